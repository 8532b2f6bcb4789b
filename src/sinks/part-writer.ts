import { type Field, FixedSizeList, Float, List, Precision, RecordBatch, Struct, makeBuilder, makeData, type DataType } from 'apache-arrow';
import type { Float16, Float32 } from 'apache-arrow';
import type { Data, Schema } from 'apache-arrow';
import type { ExtraValue } from '../types/columns.js';
import type { TapOutput } from '../types/features.js';
import { float16ListData, float32ListData, utf8Data } from './arrow-data.js';
import { FIELD_META, ID_COLUMN } from './arrow-schema.js';
import { fromFloat16Array, toFloat16Array } from '../types/float16.js';
import { defaultFormats, type BatchFileWriter, type PartFormatEntry } from './formats.js';
import type { SinkWriter } from '../storage/types.js';

interface TapColumn {
  name: string;
  type: FixedSizeList<Float32> | FixedSizeList<Float16>;
  half: boolean;
  listSize: number;
  shape: number[] | null;
  /** the column's List type when rows hold a variable number of items (text token states) */
  ragged: List | null;
}

/**
 * Writes one part file with the schema of `buildSchema`, one record batch per `writeBatch`,
 * committed atomically by `close()`: an Arrow IPC file streamed to the SinkWriter, or a Parquet
 * file (same schema and metadata) encoded when the part is closed.
 */
export class PartWriter {
  private readonly columns: TapColumn[];
  /** the carried and chunk columns, between `id` and the taps */
  private readonly extra: Field[];

  private constructor(
    private readonly schema: Schema,
    private readonly file: BatchFileWriter,
  ) {
    this.columns = tapColumns(schema);
    this.extra = extraFields(schema);
  }

  /**
   * Starts a part file in `sinkWriter` with `schema` (from buildSchema), in `format`: an entry of
   * a format registry, or the name of a built-in one. @defaultValue 'arrow'
   */
  static async open(sinkWriter: SinkWriter, schema: Schema, format: PartFormatEntry | string = 'arrow'): Promise<PartWriter> {
    tapColumns(schema); // fail on a foreign schema before anything is written
    const entry = typeof format === 'string' ? defaultFormats().get(format) : format;
    return new PartWriter(schema, await entry.open(sinkWriter, schema));
  }

  /**
   * Appends rows as one record batch. Each tap's `data` is [rows, ...shape] flattened; the
   * batch is built over those arrays without copying them (unless a float16 column is given
   * float32 data or the reverse, which is converted). The arrays must not be modified until
   * the returned promise resolves, when their bytes have been handed to the sink. `extra`: per
   * row, its values of the schema's carried and chunk columns, in their order.
   */
  async writeBatch(ids: readonly string[], taps: Readonly<Record<string, TapOutput>>, extra: ReadonlyArray<readonly ExtraValue[]> = []): Promise<void> {
    const rows = ids.length;
    if (rows === 0) return;
    const known = new Set(this.columns.map((c) => c.name));
    for (const name of Object.keys(taps)) {
      if (!known.has(name)) throw new Error(`writeBatch: tap column '${name}' is not in the part's schema (${[...known].join(', ')})`);
    }
    if (this.extra.length > 0 && extra.length !== rows) {
      throw new Error(`writeBatch: ${extra.length} rows of values for the columns ${this.extra.map((f) => f.name).join(', ')}, but ${rows} rows`);
    }
    const children: Data[] = [utf8Data(ids)];
    this.extra.forEach((f, j) =>
      children.push(
        extraData(
          f,
          extra.map((r) => r[j] ?? null),
        ),
      ),
    );
    for (const col of this.columns) {
      const out = taps[col.name];
      if (!out) throw new Error(`writeBatch: no features for tap column '${col.name}'`);
      if (col.ragged) {
        children.push(raggedData(col, rows, out));
        continue;
      }
      if (col.shape && !sameShape(col.shape, out.shape)) {
        throw new Error(
          `writeBatch: tap column '${col.name}' has per-row shape ${JSON.stringify(out.shape)}, but the part's schema says ${JSON.stringify(col.shape)}`,
        );
      }
      if (out.data.length !== rows * col.listSize) {
        throw new Error(
          `writeBatch: tap column '${col.name}' has ${out.data.length} values for ${rows} rows; expected ${rows} x ${col.listSize} = ${rows * col.listSize}`,
        );
      }
      children.push(columnData(col, rows, out.data));
    }
    const data = makeData({ type: new Struct(this.schema.fields), length: rows, nullCount: 0, children });
    await this.file.write(new RecordBatch(this.schema, data));
  }

  /** Finishes the file (footer) and commits it; returns rows written, size and full path/URI. */
  async close(): Promise<{ rows: number; bytes: number; uri: string }> {
    return this.file.close();
  }

  /** Discards the part; nothing appears under its final name. */
  async abort(): Promise<void> {
    await this.file.abort();
  }
}

function columnData(col: TapColumn, rows: number, values: Float32Array | Uint16Array): Data {
  if (col.half) {
    const bits = values instanceof Uint16Array ? values : toFloat16Array(values);
    return float16ListData(col.type as FixedSizeList<Float16>, rows, bits);
  }
  const floats = values instanceof Float32Array ? values : fromFloat16Array(values);
  return float32ListData(col.type as FixedSizeList<Float32>, rows, floats);
}

/** A List<FixedSizeList> column: each row's items, one after another in `out.data`, counted by `out.lengths`. */
function raggedData(col: TapColumn, rows: number, out: TapOutput): Data {
  const lengths = out.lengths;
  if (!lengths || lengths.length !== rows) {
    throw new Error(`writeBatch: tap column '${col.name}' holds a list of items per row, but its features give no item counts for ${rows} rows`);
  }
  const offsets = new Int32Array(rows + 1);
  for (let r = 0; r < rows; r++) offsets[r + 1] = offsets[r]! + lengths[r]!;
  const items = offsets[rows]!;
  if (out.data.length !== items * col.listSize) {
    throw new Error(`writeBatch: tap column '${col.name}' has ${out.data.length} values for ${items} items of ${col.listSize}`);
  }
  const child = columnData(col, items, out.data);
  return makeData({ type: col.ragged!, length: rows, nullCount: 0, valueOffsets: offsets, child });
}

/** The fields of carried and chunk columns (they have `layertap.column` metadata). */
function extraFields(schema: Schema): Field[] {
  return (schema.fields as Field[]).filter((f) => f.metadata.has(FIELD_META.column));
}

/** A carried or chunk column's values as Arrow data of the field's type (nulls where a value is null). */
function extraData(field: Field, values: ExtraValue[]): Data {
  const type = field.type as DataType;
  const wide = String(type) === 'Int64';
  const cells = values.map((v) => {
    if (v === null) return null;
    if (wide) return typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
    return typeof v === 'bigint' ? Number(v) : v;
  });
  // one builder flushed once: a single Data however many rows
  const builder = makeBuilder({ type, nullValues: [null] });
  for (const c of cells) builder.append(c as never);
  return builder.finish().flush();
}

function tapColumns(schema: Schema): TapColumn[] {
  const [first, ...fields] = schema.fields as Field[];
  if (!first || first.name !== ID_COLUMN) {
    throw new Error(`PartWriter: the schema's first column must be '${ID_COLUMN}'; build it with buildSchema()`);
  }
  const rest = fields.filter((f) => !f.metadata.has(FIELD_META.column));
  return rest.map((f) => {
    const outer: unknown = f.type;
    const ragged = outer instanceof List ? outer : null;
    const type: unknown = ragged ? ragged.valueType : outer;
    if (!(type instanceof FixedSizeList)) {
      throw new Error(`PartWriter: column '${f.name}' is ${String(f.type)}, expected FixedSizeList<Float32|Float16> or a List of them`);
    }
    // a schema read back from a file has generic Float types, so go by precision, not class
    const value: unknown = type.valueType;
    const precision = value instanceof Float ? value.precision : null;
    if (precision !== Precision.SINGLE && precision !== Precision.HALF) {
      throw new Error(`PartWriter: column '${f.name}' holds ${String(value)}, expected Float32 or Float16`);
    }
    const shapeText = ragged ? undefined : f.metadata.get(FIELD_META.shape);
    return {
      ragged,
      name: f.name,
      type: type as FixedSizeList<Float32> | FixedSizeList<Float16>,
      half: precision === Precision.HALF,
      listSize: type.listSize,
      shape: shapeText ? (JSON.parse(shapeText) as number[]) : null,
    };
  });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
