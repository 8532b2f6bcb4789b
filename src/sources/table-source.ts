import { ArrowTableReader } from './arrow-table-reader.js';
import { JSONL_TYPE_BYTES, JSONL_TYPE_ROWS, JsonlTableReader } from './jsonl-table-reader.js';
import { ParquetTableReader } from './parquet-table-reader.js';
import type { CarriedColumn } from '../config/resolved.js';
import type { RawRow, TableColumn } from './table-cells.js';
import type { TableLocation } from './table-location.js';
import type { TableReader } from './table-reader.js';
import type { RowShape, ShardSpec, Source, SourceRow, TableFormat } from './types.js';
import { FieldError } from '../types/errors.js';
import { Lazy } from '../types/lazy.js';

/** Options of a {@link TableSource}. */
export interface TableSourceOptions {
  /** column holding row ids. @defaultValue 'id' when the table has one, else the row index */
  idColumn?: string;
  /** column to embed: a list of numbers (tensor row), image bytes (binary) or an image path (text). @defaultValue the only column besides the id column */
  inputColumn?: string;
  /** image files read ahead for a path column (order is kept). @defaultValue 8 */
  readAhead?: number;
  /** JSONL: longest line read as a row; a longer one is an error row. @defaultValue 64 MiB */
  maxLineBytes?: number;
  /** a string input column holds text to tokenize, not image paths (the model takes token ids). @defaultValue false */
  text?: boolean;
  /** columns copied into the output beside the id. @defaultValue the input column for text, else none */
  carry?: string[];
}

interface Layout {
  id: string | null;
  input: TableColumn;
  /** per-row tensor shape; null for image columns; 'tensor' or 'unknown' when no row tells (see RowShape) */
  shape: RowShape;
  /** the columns copied into the output, with their output types */
  carry: CarriedColumn[];
}

/** Rows of a list column read at most for one that tells the row shape. */
const SHAPE_ROWS = JSONL_TYPE_ROWS;

/** Creates the reader for a table format. */
function readerFor(format: TableFormat, file: string, options: TableSourceOptions): TableReader {
  switch (format) {
    case 'arrow':
      return new ArrowTableReader(file);
    case 'parquet':
      return new ParquetTableReader(file);
    case 'jsonl':
      return new JsonlTableReader(file, options.maxLineBytes !== undefined ? { maxLineBytes: options.maxLineBytes } : {});
    default: {
      const never: never = format;
      throw new FieldError('source.type', `unknown table format '${String(never)}'`);
    }
  }
}

/**
 * A table (Arrow IPC, Parquet or JSONL) with one row per input: an id column and an input column
 * that holds either a tensor row, encoded image bytes, or an image path relative to the table.
 * Shards are row ranges; reading streams the record batches / row groups / lines they cover, so
 * a table larger than memory works (memory is bounded by the largest batch or row group).
 */
export class TableSource implements Source {
  private reader: Promise<TableReader> | null = null;
  private readonly layout = new Lazy<Layout>(() => this.loadLayout());
  private readonly readAhead: number;

  constructor(
    readonly uri: string,
    readonly type: TableFormat,
    private readonly location: TableLocation,
    private readonly options: TableSourceOptions = {},
  ) {
    const readAhead = options.readAhead ?? 8;
    if (!Number.isInteger(readAhead) || readAhead < 1) throw new Error(`TableSource readAhead must be a positive integer, got ${readAhead}`);
    this.readAhead = readAhead;
  }

  /** The input column's per-row shape for tensor columns; null for image columns (bytes or paths); see {@link RowShape}. */
  async rowShape(): Promise<RowShape> {
    return (await this.layout.get()).shape;
  }

  /** The columns copied into the output beside the id, with the type each is written as. */
  async carried(): Promise<CarriedColumn[]> {
    return (await this.layout.get()).carry;
  }

  /** Checks that the table can be read and that its id and input columns are usable. */
  async check(): Promise<void> {
    await this.location.check();
    await this.layout.get();
  }

  async count(): Promise<number> {
    return (await this.getReader()).count();
  }

  async *plan(shardSize: number): AsyncIterable<ShardSpec> {
    yield* (await this.getReader()).plan(shardSize);
  }

  /** The shard's rows in order; a null, malformed or unreadable input becomes an `error` row. */
  async *read(shard: ShardSpec): AsyncIterable<SourceRow> {
    const layout = await this.layout.get();
    const reader = await this.getReader();
    const rows = reader.rows(shard, { id: layout.id, input: layout.input.name, carry: layout.carry });
    if (layout.input.kind !== 'text' || this.options.text === true) {
      for await (const raw of rows) yield this.toRow(raw, layout);
      return;
    }
    // image paths: keep up to readAhead reads in flight, yield in order
    const inflight: Array<Promise<SourceRow>> = [];
    const it = rows[Symbol.asyncIterator]();
    let done = false;
    try {
      while (!done || inflight.length > 0) {
        while (!done && inflight.length < this.readAhead) {
          const next = await it.next();
          if (next.done) {
            done = true;
            break;
          }
          const p = this.readPath(next.value, layout);
          p.catch(() => undefined);
          inflight.push(p);
        }
        const head = inflight.shift();
        if (head) yield await head;
      }
    } finally {
      // a consumer that stops early must still close the reader's file
      if (!done) await it.return?.();
    }
  }

  async close(): Promise<void> {
    const reader = this.reader;
    this.reader = null;
    this.layout.reset();
    if (reader) await reader.then((r) => r.close()).catch(() => undefined);
    await this.location.close();
  }

  private getReader(): Promise<TableReader> {
    if (!this.reader) {
      const loading = this.location.localPath().then((file) => readerFor(this.type, file, this.options));
      this.reader = loading;
      loading.catch(() => {
        if (this.reader === loading) this.reader = null;
      });
    }
    return this.reader;
  }

  private async loadLayout(): Promise<Layout> {
    const layout = await this.loadColumns();
    return { ...layout, carry: await this.carryColumns(layout) };
  }

  /** The carried columns: those `carry` names (each must exist and hold text, numbers or booleans), by default a text job's input column. */
  private async carryColumns(layout: Omit<Layout, 'carry'>): Promise<CarriedColumn[]> {
    const names = this.options.carry ?? (this.options.text === true && layout.input.name !== '' ? [layout.input.name] : []);
    if (names.length === 0) return [];
    const columns = await (await this.getReader()).columns();
    // a JSONL file without a row: nothing will be read, and every carried column is null text
    if (columns.length === 0) return names.map((name) => (name === layout.input.name ? { name, type: 'utf8', input: true } : { name, type: 'utf8' }));
    const list = columns.map((c) => `'${c.name}'`).join(', ');
    const seen = new Set<string>();
    return names.map((name, i) => {
      const field = `source.carry[${i}]`;
      if (seen.has(name)) throw new FieldError(field, `'${name}' is named twice`);
      seen.add(name);
      if (layout.id !== null && name === layout.id)
        throw new FieldError(field, `'${name}' is the id column, which every row has as 'id' already; carry other columns`);
      const column = columns.find((c) => c.name === name);
      if (!column) throw new FieldError(field, `no column '${name}' in ${this.uri}; columns are: ${list}`);
      // a JSONL column null in the rows sampled is carried as text (JSON for values that are not strings)
      const type = column.carry ?? (column.kind === 'null' ? 'utf8' : undefined);
      if (type === undefined) throw new FieldError(field, `column '${name}' is ${column.typeName}; carried columns hold text, numbers or booleans`);
      return name === layout.input.name ? { name, type, input: true } : { name, type };
    });
  }

  private async loadColumns(): Promise<Omit<Layout, 'carry'>> {
    const reader = await this.getReader();
    const columns = await reader.columns();
    // a JSONL file without a row has no columns to check the job's against: nothing will be read
    if (columns.length === 0 && (await reader.count()) === 0) {
      const input: TableColumn = { name: this.options.inputColumn ?? '', kind: 'null', typeName: 'no rows', everyRow: true };
      return { id: this.options.idColumn ?? null, input, shape: 'unknown' };
    }
    const names = columns.map((c) => c.name);
    const list = names.length > 0 ? names.map((n) => `'${n}'`).join(', ') : 'none';
    const byName = (name: string) => columns.find((c) => c.name === name);

    let id: string | null;
    if (this.options.idColumn !== undefined) {
      if (!byName(this.options.idColumn)) throw new FieldError('source.idColumn', `no column '${this.options.idColumn}' in ${this.uri}; columns are: ${list}`);
      id = this.options.idColumn;
    } else {
      id = byName('id') ? 'id' : null;
    }

    let input: TableColumn | undefined;
    if (this.options.inputColumn !== undefined) {
      input = byName(this.options.inputColumn);
      if (!input) throw new FieldError('source.inputColumn', `no column '${this.options.inputColumn}' in ${this.uri}; columns are: ${list}`);
    } else {
      const rest = columns.filter((c) => c.name !== id);
      if (rest.length !== 1) {
        throw new FieldError(
          'source.inputColumn',
          rest.length === 0
            ? `${this.uri} has no column to embed besides the id column (columns: ${list})`
            : `${this.uri} has several columns (${list}); name the one to embed with source.inputColumn`,
        );
      }
      input = rest[0] as TableColumn;
    }
    if (input.name === id) throw new FieldError('source.inputColumn', `'${input.name}' is also the id column; choose another column`);
    if (input.kind === 'null') {
      // every cell read is null: each is an error row; for text the others are what any string column's are
      if (this.options.text === true) return { id, input, shape: null };
      if (input.everyRow === true) return { id, input, shape: 'unknown' };
      throw new FieldError(
        'source.inputColumn',
        `column '${input.name}' is null in every row read to tell its type (the first ${JSONL_TYPE_ROWS} rows or ${JSONL_TYPE_BYTES / 2 ** 20} MiB of ${this.uri}); ` +
          'a JSONL column takes the type of its first non-null value among them',
      );
    }
    if (this.options.text === true && input.kind !== 'text') {
      throw new FieldError(
        'source.inputColumn',
        `column '${input.name}' is ${input.typeName}; the model takes token ids, so it must hold text (a string column)`,
      );
    }
    if (input.kind === 'other') {
      throw new FieldError(
        'source.inputColumn',
        `column '${input.name}' is ${input.typeName}; it must hold a list of numbers (a tensor row), image bytes (binary) or image paths (text)`,
      );
    }
    if (input.kind !== 'tensor') return { id, input, shape: null };
    if (input.shape) return { id, input, shape: input.shape };
    if (input.listSize !== undefined) return { id, input, shape: [input.listSize] };
    // a variable-length list: the first row with a list decides, and every other row must match it
    return { id, input, shape: await this.firstTensor(reader, id, input.name) };
  }

  /**
   * The shape of the first list of numbers among the first rows (null and malformed cells are
   * error rows, not the column's type); 'tensor' when those were every row and none holds one.
   */
  private async firstTensor(reader: TableReader, id: string | null, input: string): Promise<number[] | 'tensor'> {
    let shard: ShardSpec | null = null;
    for await (const s of reader.plan(SHAPE_ROWS)) {
      shard = s;
      break;
    }
    if (!shard) return 'tensor';
    let problem: string | null = null;
    for await (const raw of reader.rows(shard, { id, input })) {
      if (raw.input.kind === 'tensor') return raw.input.shape ?? [raw.input.data.length];
      if (raw.input.kind !== 'null') problem ??= `row ${raw.index}: ${raw.input.kind === 'invalid' ? raw.input.message : raw.input.kind}`;
    }
    if (shard.count < SHAPE_ROWS) return 'tensor';
    throw new FieldError(
      'source.inputColumn',
      `none of the first ${SHAPE_ROWS} rows has a list of numbers in '${input}' (${problem ?? 'all are null'}); the first one decides the row shape`,
    );
  }

  private toRow(raw: RawRow, layout: Layout): SourceRow {
    const row = this.toInputRow(raw, layout);
    if (raw.carry && row.kind !== 'error') row.carry = raw.carry;
    return row;
  }

  private toInputRow(raw: RawRow, layout: Layout): SourceRow {
    // with an id column, a row without an id has none: its index could be another row's id
    const id = layout.id === null ? String(raw.index) : raw.id;
    const cell = raw.input;
    const col = layout.input.name;
    const error = (message: string): SourceRow => ({ id, kind: 'error', stage: 'read', message: `row ${raw.index}: ${message}` });
    if (cell.kind === 'invalid')
      return error(this.options.text === true && cell.got !== undefined ? `${col} is not a string (got ${cell.got})` : `${col}: ${cell.message}`);
    if (id === null) return error(`the id column '${layout.id}' is null`);
    switch (cell.kind) {
      case 'null':
        return error(`${col} is null`);
      case 'tensor': {
        if (this.options.text === true) return error(`${col} is not a string (got a list)`);
        const shape = Array.isArray(layout.shape) ? layout.shape : [];
        const want = shape.reduce((a, b) => a * b, 1);
        if (layout.input.kind !== 'tensor' || !Array.isArray(layout.shape) || cell.data.length !== want) {
          return error(`${col} has ${cell.data.length} values, expected ${want} (row shape ${JSON.stringify(layout.shape)})`);
        }
        return { id, kind: 'tensor', data: cell.data };
      }
      case 'bytes':
        if (this.options.text === true) return error(`${col} is not a string (got bytes)`);
        if (layout.input.kind !== 'binary') return error(`${col} holds bytes, expected ${layout.input.kind}`);
        return { id, kind: 'bytes', bytes: cell.bytes };
      case 'text':
        if (this.options.text === true) return { id, kind: 'text', text: cell.text };
        return error(`${col} holds text, expected ${layout.input.kind}`);
      default: {
        const never: never = cell;
        return error(`unexpected value ${String(never)}`);
      }
    }
  }

  private async readPath(raw: RawRow, layout: Layout): Promise<SourceRow> {
    if (raw.input.kind !== 'text') return this.toRow(raw, layout);
    const id = layout.id === null ? String(raw.index) : raw.id;
    if (id === null) return { id, kind: 'error', stage: 'read', message: `row ${raw.index}: the id column '${layout.id}' is null` };
    try {
      return { id, kind: 'bytes', bytes: await this.location.readRelative(raw.input.text), ...(raw.carry ? { carry: raw.carry } : {}) };
    } catch (err) {
      return { id, kind: 'error', stage: 'read', message: `row ${raw.index}: ${(err as Error).message}` };
    }
  }
}
