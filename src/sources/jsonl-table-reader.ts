import { lines, planLines, type Line } from './file-lines.js';
import { checkLimit, DEFAULT_MAX_LINE_BYTES } from './limits.js';
import { jsonCell, jsonKind } from './table-cells.js';
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

/**
 * JSON Lines: one JSON object per line, blank lines skipped. Planning streams the file once,
 * counting rows and noting the byte offset where each shard starts, so reading a shard seeks
 * straight to it. Columns come from the first row's keys. A line that is not a JSON object,
 * or that is longer than `maxLineBytes` (which is counted but never held in memory), becomes
 * an error row.
 */
export class JsonlTableReader implements TableReader {
  private total: Promise<number> | null = null;
  private first: Promise<Record<string, unknown> | null> | null = null;
  private readonly maxLineBytes: number;

  constructor(
    private readonly path: string,
    options: JsonlTableReaderOptions = {},
  ) {
    this.maxLineBytes = checkLimit('source.maxLineBytes', options.maxLineBytes, DEFAULT_MAX_LINE_BYTES);
  }

  async columns(): Promise<TableColumn[]> {
    const row = await this.firstRow();
    if (!row) return [];
    return Object.entries(row).map(([name, v]) => ({
      name,
      kind: jsonKind(v),
      typeName: `JSON ${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v}`,
    }));
  }

  async count(): Promise<number> {
    this.total ??= (async () => {
      let n = 0;
      for await (const line of lines(this.path, 0, this.maxLineBytes)) if (!line.blank) n++;
      return n;
    })();
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
    this.first = null;
  }

  private firstRow(): Promise<Record<string, unknown> | null> {
    this.first ??= (async () => {
      for await (const line of lines(this.path, 0, this.maxLineBytes)) {
        if (line.blank) continue;
        if (line.over) {
          throw new FieldError(
            'source.maxLineBytes',
            `the first row of ${this.path} is ${line.length} bytes, more than ${this.maxLineBytes}; columns are taken from the first row: raise source.maxLineBytes to read it`,
          );
        }
        let value: unknown;
        try {
          value = parse(line.bytes);
        } catch (err) {
          throw new Error(
            `${this.path}: the first row (line at byte ${line.offset}) is not valid JSON: ${(err as Error).message}; columns are taken from the first row`,
            { cause: err },
          );
        }
        if (!isObject(value))
          throw new Error(`${this.path}: the first row is not a JSON object; each line must be one object such as {"id": "a", "input": [...]}`);
        return value;
      }
      return null;
    })();
    return this.first;
  }
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
  return {
    index,
    id: id === null || id === undefined ? null : typeof id === 'string' ? id : JSON.stringify(id),
    input: columns.input in value ? jsonCell(value[columns.input]) : { kind: 'invalid', message: `the row has no '${columns.input}' field` },
  };
}

function parse(bytes: Buffer): unknown {
  return JSON.parse(decoder.decode(bytes));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
