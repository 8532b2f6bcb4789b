import { DataType, Precision } from 'apache-arrow';
import type { Field, Table, Vector } from 'apache-arrow';
import type { ExtraType, ExtraValue } from '../types/columns.js';
import { FieldError } from '../types/errors.js';

/**
 * What a table column holds, as far as embedding is concerned. 'null': a JSONL column that held
 * no value but null in the rows read to decide its type.
 */
export type ColumnKind = 'tensor' | 'binary' | 'text' | 'other' | 'null';

/** A column of a table source. */
export interface TableColumn {
  name: string;
  kind: ColumnKind;
  /** the type as the file says it, for messages */
  typeName: string;
  /** values per row when the schema fixes it (a FixedSizeList) */
  listSize?: number;
  /** per-row shape from the field's `layertap.shape` metadata, when it agrees with listSize (JSONL: from the first array) */
  shape?: number[];
  /** a 'null' column: the rows read were every row of the table, so no row holds a value in it */
  everyRow?: boolean;
  /** how the column is written when `source.carry` names it; absent: it cannot be carried (lists, bytes, structs) */
  carry?: ExtraType;
}

/** The value of a row's input column, read but not yet checked against the column's kind. */
export type TableCell =
  | { kind: 'tensor'; data: Float32Array; shape?: number[] }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'text'; text: string }
  | { kind: 'null' }
  /** `got`: the value's type, when the value is readable but of a type no input takes */
  | { kind: 'invalid'; message: string; got?: string };

/** One row of a shard as a table reader yields it. */
export interface RawRow {
  /** position in the whole table */
  index: number;
  /** the id column's value as text, or null (no id column, or a null id) */
  id: string | null;
  input: TableCell;
  /** the values of the columns `RowColumns.carry` names, in that order */
  carry?: ExtraValue[];
}

/** Which columns a shard read needs. */
export interface RowColumns {
  id: string | null;
  input: string;
  /** columns copied into the output (`source.carry`), with the type each is written as */
  carry?: ReadonlyArray<{ name: string; type: ExtraType }>;
}

/** A carried cell as its column's output type takes it (null for a value of another type). */
export function carryValue(value: unknown, type: ExtraType): ExtraValue {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'utf8':
      return typeof value === 'string' ? value : typeof value === 'bigint' ? String(value) : JSON.stringify(value);
    case 'bool':
      return typeof value === 'boolean' ? value : null;
    case 'int32':
    case 'int64':
    case 'float64':
      return typeof value === 'number' || typeof value === 'bigint' ? value : null;
  }
}

/** Classifies an Arrow field: lists of numbers are tensors, binary is image bytes, text is image paths. */
export function arrowColumn(field: Field): TableColumn {
  const column = arrowColumnKind(field);
  const t = field.type;
  const carry: ExtraType | null =
    DataType.isUtf8(t) || DataType.isLargeUtf8(t) ? 'utf8' : DataType.isInt(t) ? 'int64' : DataType.isFloat(t) ? 'float64' : DataType.isBool(t) ? 'bool' : null;
  return carry ? { ...column, carry } : column;
}

function arrowColumnKind(field: Field): TableColumn {
  const t = field.type;
  const typeName = String(t);
  if (DataType.isFixedSizeList(t) || DataType.isList(t)) {
    const child = t.children[0]?.type;
    if (child && (DataType.isFloat(child) || DataType.isInt(child) || DataType.isDecimal(child))) {
      if (DataType.isFixedSizeList(t)) {
        const col: TableColumn = { name: field.name, kind: 'tensor', typeName, listSize: t.listSize };
        const shape = parseShape(field.metadata.get('layertap.shape'));
        if (shape && shape.reduce((a, b) => a * b, 1) === t.listSize) col.shape = shape;
        return col;
      }
      return { name: field.name, kind: 'tensor', typeName };
    }
    return { name: field.name, kind: 'other', typeName };
  }
  if (DataType.isBinary(t) || DataType.isLargeBinary(t) || DataType.isFixedSizeBinary(t)) return { name: field.name, kind: 'binary', typeName };
  if (DataType.isUtf8(t) || DataType.isLargeUtf8(t)) return { name: field.name, kind: 'text', typeName };
  return { name: field.name, kind: 'other', typeName };
}

function parseShape(text: string | undefined): number[] | null {
  if (!text) return null;
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) && v.every((d) => Number.isInteger(d) && (d as number) > 0) ? (v as number[]) : null;
  } catch {
    return null;
  }
}

/**
 * Rows [from, to) of an Arrow table as RawRows, numbered from `firstIndex + from`. Tensor cells
 * own a fresh Float32Array (a row may be transferred to a thread); byte cells view the batch.
 */
export function* arrowRows(table: Table, from: number, to: number, columns: RowColumns, firstIndex: number): Generator<RawRow> {
  const input = table.getChild(columns.input);
  if (!input) throw new FieldError('source.inputColumn', `no column '${columns.input}' in this part of the table`);
  const id = columns.id === null ? null : table.getChild(columns.id);
  if (columns.id !== null && !id) throw new FieldError('source.idColumn', `no column '${columns.id}' in this part of the table`);
  const carried = (columns.carry ?? []).map((c) => {
    const col = table.getChild(c.name);
    if (!col) throw new FieldError('source.carry', `no column '${c.name}' in this part of the table`);
    return { col, type: c.type };
  });
  for (let i = from; i < to; i++) {
    // a damaged value (offsets past its data) is that row's problem, not the batch's
    let rawId: unknown = null;
    let cell: TableCell;
    try {
      rawId = id ? id.get(i) : null;
      cell = arrowCell(input.get(i));
    } catch (err) {
      cell = { kind: 'invalid', message: `unreadable value: ${err instanceof Error ? err.message : String(err)}` };
    }
    const row: RawRow = { index: firstIndex + i, id: rawId === null || rawId === undefined ? null : String(rawId), input: cell };
    if (carried.length > 0) {
      row.carry = carried.map(({ col, type }) => {
        try {
          return carryValue(col.get(i), type);
        } catch {
          return null;
        }
      });
    }
    yield row;
  }
}

function arrowCell(value: unknown): TableCell {
  if (value === null || value === undefined) return { kind: 'null' };
  if (typeof value === 'string') return { kind: 'text', text: value };
  if (value instanceof Uint8Array) return { kind: 'bytes', bytes: value };
  if (isVector(value)) return vectorCell(value);
  return { kind: 'invalid', message: `unsupported value ${String(value).slice(0, 40)}` };
}

function isVector(v: unknown): v is Vector {
  return typeof v === 'object' && v !== null && 'toArray' in v && 'nullCount' in v && 'type' in v;
}

function vectorCell(v: Vector): TableCell {
  if (v.nullCount > 0) return { kind: 'invalid', message: `the list has ${v.nullCount} null value(s)` };
  const t = v.type as DataType;
  const raw: unknown = v.toArray();
  // Float16 arrays hold raw half bits and 64-bit ints are BigInts: take the values one by one
  if (DataType.isFloat(t) && t.precision === Precision.HALF) return { kind: 'tensor', data: Float32Array.from(v as Iterable<number>) };
  if (raw instanceof BigInt64Array || raw instanceof BigUint64Array) {
    return { kind: 'tensor', data: Float32Array.from(raw as Iterable<bigint>, (x) => Number(x)) };
  }
  if (ArrayBuffer.isView(raw) && !(raw instanceof DataView)) return { kind: 'tensor', data: new Float32Array(raw as unknown as ArrayLike<number>) };
  return { kind: 'tensor', data: Float32Array.from(v as Iterable<unknown>, (x) => Number(x)) };
}

/** A JSON value (JSONL) as a cell: nested arrays of numbers are tensors (shape from the nesting), strings are paths. */
export function jsonCell(value: unknown): TableCell {
  if (value === null || value === undefined) return { kind: 'null' };
  if (typeof value === 'string') return { kind: 'text', text: value };
  if (Array.isArray(value)) {
    const shape: number[] = [];
    for (let v: unknown = value; Array.isArray(v); v = v[0]) shape.push(v.length);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    let at = 0;
    const fill = (v: unknown, depth: number): boolean => {
      if (depth === shape.length) {
        if (typeof v !== 'number') return false;
        data[at++] = v;
        return true;
      }
      if (!Array.isArray(v) || v.length !== shape[depth]) return false;
      return v.every((x) => fill(x, depth + 1));
    };
    if (!fill(value, 0)) return { kind: 'invalid', message: 'the array is not a rectangular array of numbers' };
    return { kind: 'tensor', data, shape };
  }
  return { kind: 'invalid', message: `expected an array of numbers or a path, got ${typeof value}`, got: typeof value };
}

/** How a JSONL column whose first value is `value` is carried: text, a number or a boolean. */
export function jsonCarryType(value: unknown): ExtraType | undefined {
  return typeof value === 'string' ? 'utf8' : typeof value === 'number' ? 'float64' : typeof value === 'boolean' ? 'bool' : undefined;
}

/** The kind of a JSON value, for a JSONL column. */
export function jsonKind(value: unknown): ColumnKind {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return 'text';
  if (Array.isArray(value)) return 'tensor';
  return 'other';
}
