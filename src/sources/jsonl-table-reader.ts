import { countLines, lines, planLines, type Line } from './file-lines.js';
import { DEFAULTS } from '../config/defaults.js';
import { checkLimit } from './limits.js';
import { carryValue, jsonCarryType, jsonCell, jsonKind } from './table-cells.js';
import type { RawRow, RowColumns, TableColumn } from './table-cells.js';
import { checkShard } from './table-reader.js';
import type { TableReader } from './table-reader.js';
import type { ShardSpec } from './types.js';
import { FieldError } from '../types/errors.js';

/** Options of a {@link JsonlTableReader}. */
export interface JsonlTableReaderOptions {
  /** longest line read as a row; a longer line is an error row. @defaultValue 64 MiB */
  maxLineBytes?: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Rows read at most to decide the type of each column, from its first non-null value. */
export const JSONL_TYPE_ROWS = 1000;
/** Bytes of lines read at most to decide the column types (the first row is read whatever its size). */
export const JSONL_TYPE_BYTES = 16 * 1024 * 1024;

/**
 * JSON Lines: one JSON object per line, blank lines skipped. Planning streams the file once,
 * counting rows and noting the byte offset where each shard starts, so reading a shard seeks
 * straight to it. A column's type is that of its first non-null value within the first
 * {@link JSONL_TYPE_ROWS} rows or {@link JSONL_TYPE_BYTES} bytes (reading stops as soon as every
 * column seen has one). A line that is not a JSON object, or that is longer than `maxLineBytes`
 * (which is counted but never held in memory), becomes an error row.
 */
export class JsonlTableReader implements TableReader {
  private total: Promise<number> | null = null;
  private sampled: Promise<TableColumn[]> | null = null;
  private readonly maxLineBytes: number;

  constructor(
    private readonly path: string,
    options: JsonlTableReaderOptions = {},
  ) {
    this.maxLineBytes = checkLimit('source.maxLineBytes', options.maxLineBytes, DEFAULTS.job.maxLineBytes);
  }

  /** The keys of the first rows, in the order they first appear; none for a file without a row. */
  columns(): Promise<TableColumn[]> {
    this.sampled ??= this.sample();
    return this.sampled;
  }

  async count(): Promise<number> {
    this.total ??= countLines(this.path, this.maxLineBytes, (line) => !line.blank);
    return this.total;
  }

  plan(shardSize: number): AsyncIterable<ShardSpec> {
    return planLines(
      this.path,
      this.maxLineBytes,
      shardSize,
      (line) => !line.blank,
      (rows) => (this.total = Promise.resolve(rows)),
    );
  }

  async *rows(shard: ShardSpec, columns: RowColumns): AsyncIterable<RawRow> {
    // with an offset from plan() the shard starts right there; without one, skip rows up to its start
    const seek = shard.offset !== undefined && Number.isInteger(shard.offset) && shard.offset >= 0;
    let row = seek ? shard.start : 0;
    const end = shard.start + shard.count;
    if (!seek) checkShard(shard, await this.count(), this.path);
    for await (const line of lines(this.path, seek ? (shard.offset as number) : 0, this.maxLineBytes)) {
      if (row >= end) return;
      if (line.blank) continue;
      if (row >= shard.start) yield parseRow(line, row, columns, this.maxLineBytes);
      row++;
    }
    if (row < end)
      throw new Error(`${this.path}: shard ${shard.index} expects rows up to ${end - 1} but the file ends at row ${row - 1} (was it changed after planning?)`);
  }

  async close(): Promise<void> {
    this.total = null;
    this.sampled = null;
  }

  private async sample(): Promise<TableColumn[]> {
    const found = new Map<string, TableColumn>();
    let rows = 0;
    let bytes = 0;
    let objects = 0;
    let everyRow = true;
    let firstOver: Line | null = null;
    let firstBad: string | null = null;
    for await (const line of lines(this.path, 0, this.maxLineBytes)) {
      if (line.blank) continue;
      const decided = objects > 0 && [...found.values()].every((c) => c.kind !== 'null');
      if (decided || rows >= JSONL_TYPE_ROWS || bytes >= JSONL_TYPE_BYTES) {
        everyRow = false;
        break;
      }
      rows++;
      bytes += line.length;
      // a line that cannot be read is an error row when its shard is read; the next one may tell
      if (line.over) {
        firstOver ??= line;
        continue;
      }
      let value: unknown;
      try {
        value = parse(line.bytes);
      } catch (err) {
        firstBad ??= `the line at byte ${line.offset} is not valid JSON: ${(err as Error).message}`;
        continue;
      }
      if (!isObject(value)) {
        firstBad ??= `the line at byte ${line.offset} is not a JSON object`;
        continue;
      }
      objects++;
      for (const [name, v] of Object.entries(value)) {
        const known = found.get(name);
        if (known !== undefined && known.kind !== 'null') continue;
        found.set(name, jsonColumn(name, v));
      }
    }
    if (objects === 0 && rows > 0) {
      if (firstBad === null && firstOver !== null) {
        throw new FieldError(
          'source.maxLineBytes',
          rows === 1
            ? `the first row of ${this.path} is ${firstOver.length} bytes, more than ${this.maxLineBytes}; columns are taken from the first rows: raise source.maxLineBytes to read it`
            : `the first ${rows} rows of ${this.path} are all longer than ${this.maxLineBytes} bytes; columns are taken from the first rows: raise source.maxLineBytes to read them`,
        );
      }
      throw new Error(
        `${this.path}: none of the first ${rows} row(s) is a JSON object (${firstBad}); each line must be one object such as {"id": "a", "input": [...]}`,
      );
    }
    return [...found.values()].map((c) => (c.kind === 'null' ? { ...c, everyRow } : c));
  }
}

/** A JSONL column as its first value tells: an array's nesting gives the row shape. */
function jsonColumn(name: string, value: unknown): TableColumn {
  const kind = jsonKind(value);
  const column: TableColumn = { name, kind, typeName: `JSON ${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value}` };
  const carry = jsonCarryType(value);
  if (carry) column.carry = carry;
  if (kind === 'tensor') {
    const cell = jsonCell(value);
    if (cell.kind === 'tensor' && cell.shape) column.shape = cell.shape;
  }
  return column;
}

function parseRow(line: Line, index: number, columns: RowColumns, maxLineBytes: number): RawRow {
  if (line.over) {
    return {
      index,
      id: null,
      input: {
        kind: 'invalid',
        message: `line at byte ${line.offset} is ${line.length} bytes, more than source.maxLineBytes (${maxLineBytes}); raise source.maxLineBytes to read it`,
      },
    };
  }
  let value: unknown;
  try {
    value = parse(line.bytes);
  } catch (err) {
    return { index, id: null, input: { kind: 'invalid', message: `line at byte ${line.offset} is not valid JSON: ${(err as Error).message}` } };
  }
  if (!isObject(value)) return { index, id: null, input: { kind: 'invalid', message: `line at byte ${line.offset} is not a JSON object` } };
  const id = columns.id === null ? null : value[columns.id];
  const row: RawRow = {
    index,
    id: id === null || id === undefined ? null : typeof id === 'string' ? id : JSON.stringify(id),
    input: columns.input in value ? jsonCell(value[columns.input]) : { kind: 'invalid', message: `the row has no '${columns.input}' field` },
  };
  if (columns.carry && columns.carry.length > 0) row.carry = columns.carry.map((c) => carryValue(value[c.name], c.type));
  return row;
}

function parse(bytes: Buffer): unknown {
  return JSON.parse(decoder.decode(bytes));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
