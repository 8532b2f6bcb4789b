import { type FixedSizeList, type Float16, type Float32, Utf8, makeData } from 'apache-arrow';
import type { Data } from 'apache-arrow';

const encoder = new TextEncoder();

/** A utf8 column of `values` (one encoding pass into a single buffer plus an offsets array). */
export function utf8Data(values: readonly string[]): Data<Utf8> {
  const offsets = new Int32Array(values.length + 1);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    total += Buffer.byteLength(values[i] as string, 'utf8');
    if (total > 0x7fffffff) throw new RangeError('utf8 column exceeds 2 GiB of text in one batch');
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < values.length; i++) {
    encoder.encodeInto(values[i] as string, bytes.subarray(offsets[i] as number, offsets[i + 1] as number));
  }
  return makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets: offsets, data: bytes });
}

/** A FixedSizeList<Float32> column over `values` as they are: no copy, the Data views the same buffer. */
export function float32ListData(type: FixedSizeList<Float32>, rows: number, values: Float32Array): Data<FixedSizeList<Float32>> {
  const child = makeData({ type: type.valueType, length: values.length, nullCount: 0, data: values });
  return makeData({ type, length: rows, nullCount: 0, child });
}

/** A FixedSizeList<Float16> column over half-precision bits as they are (Arrow stores Float16 as Uint16Array). */
export function float16ListData(type: FixedSizeList<Float16>, rows: number, bits: Uint16Array): Data<FixedSizeList<Float16>> {
  const child = makeData({ type: type.valueType, length: bits.length, nullCount: 0, data: bits });
  return makeData({ type, length: rows, nullCount: 0, child });
}
