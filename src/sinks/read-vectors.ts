import { DataType, type Table } from 'apache-arrow';
import { fromFloat16Array } from '../types/float16.js';
import { ID_COLUMN } from './arrow-schema.js';

/** One fixed-size tap column of a part file as a row-major matrix. */
export interface VectorColumn {
  rows: number;
  /** values per row */
  dim: number;
  /** rows × dim, float32 (float16 columns are widened) */
  data: Float32Array;
}

/** A part file column that cannot be searched, with the columns that can. */
export class VectorColumnError extends Error {
  override readonly name = 'VectorColumnError';
  constructor(
    message: string,
    /** the fixed-size vector columns of the file */
    readonly choices: string[],
  ) {
    super(message);
  }
}

/** Names of the columns of `table` that hold one fixed-size float vector per row (the searchable tap columns). */
export function vectorColumnNames(table: Table): string[] {
  return table.schema.fields.filter((f) => DataType.isFixedSizeList(f.type) && isFloat(f.type.children[0]!.type)).map((f) => f.name);
}

function isFloat(t: DataType): boolean {
  return DataType.isFloat(t);
}

/**
 * The tap column `name` of a part file as one contiguous float32 matrix: a view of the file's
 * buffer when it is one float32 chunk, else a copy. Fails naming the vector columns there are.
 */
export function vectorColumn(table: Table, name: string): VectorColumn {
  const field = table.schema.fields.find((f) => f.name === name);
  const choices = vectorColumnNames(table);
  if (!field) throw new VectorColumnError(`no column '${name}'; vector columns are: ${choices.join(', ') || 'none'}`, choices);
  if (!DataType.isFixedSizeList(field.type) || !isFloat(field.type.children[0]!.type)) {
    throw new VectorColumnError(
      `column '${name}' is not a fixed-size vector column (${String(field.type)}); vector columns are: ${choices.join(', ') || 'none'}`,
      choices,
    );
  }
  const dim = field.type.listSize;
  const col = table.getChild(name)!;
  const rows = table.numRows;
  const chunks = col.data;
  if (chunks.length === 1) {
    const d = chunks[0]!;
    const values = d.children[0]!.values as Float32Array | Uint16Array;
    const start = d.offset * dim + d.children[0]!.offset;
    const view = values.subarray(start, start + rows * dim);
    if (view instanceof Float32Array) return { rows, dim, data: view };
    return { rows, dim, data: fromFloat16Array(view) };
  }
  const data = new Float32Array(rows * dim);
  let at = 0;
  for (const d of chunks) {
    const values = d.children[0]!.values as Float32Array | Uint16Array;
    const start = d.offset * dim + d.children[0]!.offset;
    const view = values.subarray(start, start + d.length * dim);
    if (view instanceof Float32Array) data.set(view, at);
    else data.set(fromFloat16Array(view), at);
    at += d.length * dim;
  }
  return { rows, dim, data };
}

/** Columns of a part file that are no row's data: its row index's hash. */
const BOOKKEEPING = new Set(['content_hash']);

/**
 * The columns a part file carries beside `id` and its features (source columns copied into the
 * output, a chunk's position): every column that is not the id, not a tap column and not a list.
 */
export function carriedColumnNames(table: Table, taps: readonly string[]): string[] {
  return table.schema.fields
    .filter(
      (f) =>
        f.name !== ID_COLUMN &&
        !taps.includes(f.name) &&
        !f.name.startsWith('_') &&
        !BOOKKEEPING.has(f.name) &&
        !DataType.isFixedSizeList(f.type) &&
        !DataType.isList(f.type) &&
        !DataType.isStruct(f.type),
    )
    .map((f) => f.name);
}

/** A cell as plain JSON: bigints as numbers when exact (else strings), dates as ISO text, bytes as their length. */
export function jsonCell(v: unknown): string | number | boolean | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`;
  return String(v);
}

/** The carried cells of row `row`, by column name. */
export function carriedCells(table: Table, columns: readonly string[], row: number): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const c of columns) out[c] = jsonCell(table.getChild(c)?.get(row));
  return out;
}
