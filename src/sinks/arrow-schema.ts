import { Bool, Field, FixedSizeList, Float16, Float32, Float64, Int32, Int64, List, Schema, Utf8, type DataType } from 'apache-arrow';
import type { ResolvedTap } from '../config/resolved.js';
import type { ExtraColumn, ExtraType } from '../types/columns.js';
import { columnLayout, type TapColumn, type TapLayout } from '../types/features.js';

/** Metadata keys of the output contract (README, "Output"). */
export const FIELD_META = {
  layer: 'layertap.layer',
  at: 'layertap.at',
  shape: 'layertap.shape',
  layout: 'layertap.layout',
  reduce: 'layertap.reduce',
  /** only when the tap sets its own axes: a JSON array, batch axis = 0 */
  reduceAxes: 'layertap.reduce_axes',
  normalize: 'layertap.normalize',
  /** on a column that is not a tap: 'carry' (copied from the source) or 'chunk' (chunk, start, end) */
  column: 'layertap.column',
} as const;

export const SCHEMA_META = {
  fingerprint: 'layertap.fingerprint',
  model: 'layertap.model',
  runtime: 'layertap.runtime',
  version: 'layertap.version',
  runId: 'layertap.runId',
} as const;

/** Name of the row id column, always first. */
export const ID_COLUMN = 'id';

/** The element type of a tap column. */
export type TapValueType = Float32 | Float16;

/** What goes into a part file's schema. */
export interface SchemaOptions {
  taps: readonly ResolvedTap[];
  /** columns between `id` and the taps: carried source columns, then a chunked job's chunk, start, end. @defaultValue none */
  extra?: readonly ExtraColumn[];
  /** per tap column name (`tap.as`): the per-row shape before flattening */
  shapes: Readonly<Record<string, readonly number[]>>;
  /**
   * columns holding a variable number of items per row (a text model's token states): their
   * shape is one item's, and the column is `List<FixedSizeList<..., D>>` with layout 'tokens'
   */
  ragged?: ReadonlySet<string>;
  /** native layout of the runtime that produced the features */
  layout: 'nhwc' | 'nchw';
  /** the features come from a text model: its fixed-size columns are laid out 'pooled'. @defaultValue false */
  text?: boolean;
  fingerprint: string;
  model: string;
  runtime: string;
  version: string;
  runId: string;
}

/** A field as recorded in `_manifest.json`. */
export interface ManifestField {
  name: string;
  /** Arrow's type string, e.g. 'FixedSizeList[512]<Float32>' */
  type: string;
  nullable: boolean;
  metadata: Record<string, string>;
}

/** The `FixedSizeList<Float32|Float16>` type of a tap column holding `listSize` values per row. */
export function tapColumnType(dtype: 'float32' | 'float16', listSize: number): FixedSizeList<TapValueType> {
  const value: TapValueType = dtype === 'float16' ? new Float16() : new Float32();
  return new FixedSizeList<TapValueType>(listSize, new Field('item', value, true));
}

/** The Arrow type of a carried or chunk column. */
export function extraColumnType(type: ExtraType): DataType {
  switch (type) {
    case 'utf8':
      return new Utf8();
    case 'int32':
      return new Int32();
    case 'int64':
      return new Int64();
    case 'float64':
      return new Float64();
    case 'bool':
      return new Bool();
  }
}

/**
 * Builds the schema of a part file: `id` (utf8), the carried and chunk columns (nullable carried
 * ones, with `layertap.column` metadata), then one FixedSizeList column per tap, with the
 * contract's metadata.
 */
export function buildSchema(opts: SchemaOptions): Schema {
  if (opts.taps.length === 0) throw new Error('buildSchema: taps is empty; a part file needs at least one tap column');
  const seen = new Set<string>([ID_COLUMN]);
  const fields: Field[] = [new Field(ID_COLUMN, new Utf8(), false)];
  for (const c of opts.extra ?? []) {
    if (seen.has(c.name)) throw new Error(`column '${c.name}' is written twice (the id column, or carried twice)`);
    seen.add(c.name);
    fields.push(new Field(c.name, extraColumnType(c.type), c.kind === 'carry', new Map([[FIELD_META.column, c.kind]])));
  }
  opts.taps.forEach((tap, i) => {
    if (seen.has(tap.as)) {
      throw new Error(
        tap.as === ID_COLUMN
          ? `taps[${i}].as: '${ID_COLUMN}' is reserved for the row id column; choose another column name`
          : `taps[${i}].as: column name '${tap.as}' is used twice (by another tap, a carried column or a chunk column)`,
      );
    }
    seen.add(tap.as);
    const shape = opts.shapes[tap.as];
    if (!shape) {
      throw new Error(`taps[${i}] (${tap.as}): no per-row shape given for this column (shapes has: ${Object.keys(opts.shapes).join(', ') || 'none'})`);
    }
    const listSize = rowSize(shape, `taps[${i}] (${tap.as})`);
    const ragged = opts.ragged?.has(tap.as) === true;
    const metadata = new Map<string, string>([
      [FIELD_META.layer, tap.layer],
      [FIELD_META.at, tap.at],
      [FIELD_META.shape, JSON.stringify(ragged ? [null, ...shape] : shape)],
      [FIELD_META.layout, columnLayout(ragged, opts.text === true, opts.layout)],
      [FIELD_META.reduce, tap.reduce],
      [FIELD_META.normalize, tap.normalize],
    ]);
    if (tap.axes) metadata.set(FIELD_META.reduceAxes, JSON.stringify(tap.axes));
    const type = tapColumnType(tap.dtype, listSize);
    fields.push(new Field(tap.as, ragged ? new List(new Field('item', type, false)) : type, false, metadata));
  });
  const metadata = new Map<string, string>([
    [SCHEMA_META.fingerprint, opts.fingerprint],
    [SCHEMA_META.model, opts.model],
    [SCHEMA_META.runtime, opts.runtime],
    [SCHEMA_META.version, opts.version],
    [SCHEMA_META.runId, opts.runId],
  ]);
  return new Schema(fields, metadata);
}

/**
 * The schema of an errors file: id (utf8, null for a row that has none), stage, message (utf8),
 * position (int64: the row's 0-based index in the source).
 */
export function errorsSchema(): Schema {
  return new Schema([
    new Field(ID_COLUMN, new Utf8(), true),
    new Field('stage', new Utf8(), false),
    new Field('message', new Utf8(), false),
    new Field('position', new Int64(), false),
  ]);
}

/** Describes a schema's fields for the manifest. */
export function describeSchema(schema: Schema): ManifestField[] {
  return schema.fields.map((f) => ({
    name: f.name,
    type: String(f.type),
    nullable: f.nullable,
    metadata: Object.fromEntries(f.metadata),
  }));
}

const LAYOUTS: readonly string[] = ['nhwc', 'nchw', 'tokens', 'pooled'] satisfies TapLayout[];

/**
 * Per tap column of a part file's schema (from buildSchema), its per-row shape and layout as
 * its field metadata says; what the manifest records of each tap.
 */
export function schemaColumns(schema: Schema): Record<string, TapColumn> {
  const out: Record<string, TapColumn> = {};
  for (const f of schema.fields) {
    const shape = f.metadata.get(FIELD_META.shape);
    const layout = f.metadata.get(FIELD_META.layout);
    if (shape === undefined || layout === undefined || !LAYOUTS.includes(layout)) continue;
    out[f.name] = { shape: JSON.parse(shape) as TapColumn['shape'], layout: layout as TapLayout };
  }
  return out;
}

/** Number of values per row of a per-row shape (1 for a scalar shape []). */
export function rowSize(shape: readonly number[], what: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1) {
      throw new Error(`${what}: per-row shape ${JSON.stringify(shape)} must be positive integers`);
    }
    n *= d;
  }
  return n;
}
