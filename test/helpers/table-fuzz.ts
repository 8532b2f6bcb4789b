import { Field, FixedSizeList, Float32, makeData, RecordBatch, RecordBatchFileWriter, RecordBatchStreamWriter, Schema, Struct, Utf8 } from 'apache-arrow';
import { loadParquetWasm } from '../../src/storage/index.js';
import { utf8Data } from '../../src/sinks/arrow-data.js';
import { prng } from '../../src/cli/demo-data.js';

// Valid tables of FUZZ_ROWS rows (id: utf8 'row-N', pixels: 784 float32, what the seed model
// takes) and deterministic damaged copies of them: truncations, flipped bytes, and stored
// lengths and counts overwritten with negative or huge values at the exact bytes that hold them.

export const FUZZ_ROWS = 24;
/** rows per record batch / row group, so that damage in one piece leaves the others readable */
export const FUZZ_PIECE_ROWS = 8;
export const FUZZ_VALUES = 28 * 28;

/** A damaged copy of a valid table; `name` says what was done to it. */
export interface Mutant {
  name: string;
  bytes: Uint8Array;
}

/** The deterministic value of pixel `k` of row `r`, in [0, 1]. */
export function pixel(r: number, k: number): number {
  return ((r * 31 + k * 7) % 256) / 255;
}

const enc = new TextEncoder();

function pieceBatch(first: number, rows: number): RecordBatch {
  const values = new Float32Array(rows * FUZZ_VALUES);
  for (let r = 0; r < rows; r++) for (let k = 0; k < FUZZ_VALUES; k++) values[r * FUZZ_VALUES + k] = pixel(first + r, k);
  const listType = new FixedSizeList(FUZZ_VALUES, new Field('item', new Float32(), false));
  const fields = [new Field('id', new Utf8(), false), new Field('pixels', listType, false)];
  const pixels = makeData({
    type: listType,
    length: rows,
    nullCount: 0,
    child: makeData({ type: new Float32(), length: values.length, nullCount: 0, data: values }),
  });
  const ids = utf8Data(Array.from({ length: rows }, (_, r) => `row-${first + r}`));
  return new RecordBatch(new Schema(fields), makeData({ type: new Struct(fields), length: rows, nullCount: 0, children: [ids, pixels] }));
}

function batches(): RecordBatch[] {
  const out: RecordBatch[] = [];
  for (let first = 0; first < FUZZ_ROWS; first += FUZZ_PIECE_ROWS) out.push(pieceBatch(first, Math.min(FUZZ_PIECE_ROWS, FUZZ_ROWS - first)));
  return out;
}

/** The valid table as an Arrow IPC file (three record batches). */
export function validArrowFile(): Uint8Array {
  return RecordBatchFileWriter.writeAll(batches()).toUint8Array(true);
}

/** The valid table as an Arrow IPC stream. */
export function validArrowStream(): Uint8Array {
  return RecordBatchStreamWriter.writeAll(batches()).toUint8Array(true);
}

/** The valid table as Parquet (three row groups). */
export async function validParquet(): Promise<Uint8Array> {
  const pq = await loadParquetWasm();
  const props = new pq.WriterPropertiesBuilder().setMaxRowGroupSize(FUZZ_PIECE_ROWS).build();
  return pq.writeParquet(pq.Table.fromIPCStream(validArrowStream()), props);
}

/** One JSONL line of row `r` (no newline). */
export function jsonlLine(r: number): string {
  return JSON.stringify({ id: `row-${r}`, pixels: Array.from({ length: FUZZ_VALUES }, (_, k) => Number(pixel(r, k).toFixed(4))) });
}

/** The valid table as JSON Lines. */
export function validJsonl(): Uint8Array {
  return enc.encode(Array.from({ length: FUZZ_ROWS }, (_, r) => jsonlLine(r) + '\n').join(''));
}

/** A small deterministic PRNG (mulberry32), so every run builds the same mutants. */
export { prng };

function truncations(valid: Uint8Array): Mutant[] {
  const cuts = [0, 3, 8, Math.floor(valid.length / 4), Math.floor(valid.length / 2), Math.floor((valid.length * 3) / 4), valid.length - 10, valid.length - 1];
  return [...new Set(cuts)].map((n) => ({ name: `truncated to ${n} of ${valid.length} bytes`, bytes: valid.slice(0, n) }));
}

function flips(valid: Uint8Array, seed: number, count: number, within?: Array<[number, number]>): Mutant[] {
  const rand = prng(seed);
  const out: Mutant[] = [];
  for (let i = 0; i < count; i++) {
    const [from, to] = within?.[i % within.length] ?? [0, valid.length];
    const at = from + Math.floor(rand() * (to - from));
    const bytes = valid.slice();
    bytes[at] = (bytes[at]! ^ (1 + Math.floor(rand() * 255))) & 0xff;
    out.push({ name: `byte ${at} flipped`, bytes });
  }
  return out;
}

function setInt64(valid: Uint8Array, at: number, value: bigint): Uint8Array {
  const bytes = valid.slice();
  new DataView(bytes.buffer).setBigInt64(at, value, true);
  return bytes;
}

function setInt32(valid: Uint8Array, at: number, value: number): Uint8Array {
  const bytes = valid.slice();
  new DataView(bytes.buffer).setInt32(at, value, true);
  return bytes;
}

// -- Arrow IPC: where the lengths are ------------------------------------------------------

/** Flatbuffer access to one table: the absolute position of field `id`, or null when absent. */
function fbField(view: DataView, table: number, id: number): number | null {
  const vtable = table - view.getInt32(table, true);
  const vtSize = view.getUint16(vtable, true);
  if (4 + 2 * id >= vtSize) return null;
  const off = view.getUint16(vtable + 4 + 2 * id, true);
  return off === 0 ? null : table + off;
}

function fbTable(view: DataView, fieldPos: number): number {
  return fieldPos + view.getUint32(fieldPos, true);
}

/** Byte positions of the stored lengths of one Arrow IPC message. */
export interface ArrowMessageFields {
  /** where the message starts (its continuation marker) */
  offset: number;
  /** the int32 metadata length */
  metaLength: number;
  /** Message.bodyLength (int64), when stored */
  bodyLength: number | null;
  /** RecordBatch.length (int64), for record batches */
  rowCount: number | null;
  /** FieldNode lengths (int64 each), for record batches */
  nodeLengths: number[];
  /** Buffer offsets and lengths (int64 each), for record batches */
  bufferOffsets: number[];
  bufferLengths: number[];
  isRecordBatch: boolean;
}

/** Walks the messages of an Arrow IPC file or stream and says where each stored length is. */
export function arrowMessages(bytes: Uint8Array): ArrowMessageFields[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const isFile = String.fromCharCode(...bytes.subarray(0, 6)) === 'ARROW1';
  let pos = isFile ? 8 : 0;
  const end = isFile ? bytes.length - 10 - view.getInt32(bytes.length - 10, true) : bytes.length;
  const out: ArrowMessageFields[] = [];
  while (pos + 8 <= end) {
    const metaLen = view.getInt32(pos + 4, true);
    if (metaLen === 0) break;
    const meta = pos + 8;
    const root = meta + view.getUint32(meta, true);
    const headerType = fbField(view, root, 1);
    const isRecordBatch = headerType !== null && view.getUint8(headerType) === 3;
    const bodyField = fbField(view, root, 3);
    const body = bodyField === null ? 0 : Number(view.getBigInt64(bodyField, true));
    const fields: ArrowMessageFields = {
      offset: pos,
      metaLength: pos + 4,
      bodyLength: bodyField,
      rowCount: null,
      nodeLengths: [],
      bufferOffsets: [],
      bufferLengths: [],
      isRecordBatch,
    };
    const headerField = fbField(view, root, 2);
    if (isRecordBatch && headerField !== null) {
      const rb = fbTable(view, headerField);
      fields.rowCount = fbField(view, rb, 0);
      const nodes = fbField(view, rb, 1);
      if (nodes !== null) {
        const v = fbTable(view, nodes);
        for (let i = 0, n = view.getUint32(v, true); i < n; i++) fields.nodeLengths.push(v + 4 + 16 * i);
      }
      const buffers = fbField(view, rb, 2);
      if (buffers !== null) {
        const v = fbTable(view, buffers);
        for (let i = 0, n = view.getUint32(v, true); i < n; i++) {
          fields.bufferOffsets.push(v + 4 + 16 * i);
          fields.bufferLengths.push(v + 4 + 16 * i + 8);
        }
      }
    }
    out.push(fields);
    pos = meta + metaLen + body;
  }
  return out;
}

/** Positions of the footer's record batch blocks (offset int64, metaDataLength int32, bodyLength int64). */
function arrowFooterBlocks(bytes: Uint8Array): Array<{ offset: number; metaLength: number; bodyLength: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const footer = bytes.length - 10 - view.getInt32(bytes.length - 10, true);
  const root = footer + view.getUint32(footer, true);
  const batches = fbField(view, root, 3);
  if (batches === null) return [];
  const v = fbTable(view, batches);
  return Array.from({ length: view.getUint32(v, true) }, (_, i) => ({
    offset: v + 4 + 24 * i,
    metaLength: v + 4 + 24 * i + 8,
    bodyLength: v + 4 + 24 * i + 16,
  }));
}

const NEGATIVE = [-1n, -8n, -(2n ** 40n)];
const HUGE = [2n ** 31n, 2n ** 40n, 2n ** 62n];

/** Damaged copies of a valid Arrow IPC file or stream. */
export function arrowMutants(valid: Uint8Array): Mutant[] {
  const out: Mutant[] = [...truncations(valid), ...flips(valid, 13, 12)];
  const messages = arrowMessages(valid);
  const batches = messages.filter((m) => m.isRecordBatch);
  // the metadata of each message: where a flip hits a length, a type or an offset
  out.push(
    ...flips(
      valid,
      29,
      6,
      messages.map((m) => [m.offset + 8, m.offset + 8 + new DataView(valid.buffer, valid.byteOffset).getInt32(m.metaLength, true)] as [number, number]),
    ),
  );
  batches.forEach((b, i) => {
    for (const v of [...NEGATIVE, ...HUGE]) {
      if (b.bodyLength !== null) out.push({ name: `batch ${i} bodyLength = ${v}`, bytes: setInt64(valid, b.bodyLength, v) });
      if (b.rowCount !== null) out.push({ name: `batch ${i} row count = ${v}`, bytes: setInt64(valid, b.rowCount, v) });
    }
  });
  const first = batches[0]!;
  for (const v of [-1n, 2n ** 40n]) {
    out.push({ name: `batch 0 node 1 length = ${v}`, bytes: setInt64(valid, first.nodeLengths[1]!, v) });
    out.push({ name: `batch 0 buffer 2 offset = ${v}`, bytes: setInt64(valid, first.bufferOffsets[2]!, v) });
    out.push({ name: `batch 0 buffer 4 length = ${v}`, bytes: setInt64(valid, first.bufferLengths[4]!, v) });
  }
  // consistent damage: the batch's count and its top-level node lengths agree, the buffers do not
  let consistent = setInt64(valid, first.rowCount!, 2n ** 40n);
  for (const n of [first.nodeLengths[0]!, first.nodeLengths[1]!]) consistent = setInt64(consistent, n, 2n ** 40n);
  out.push({ name: 'batch 0 row count and top-level nodes = 2^40', bytes: consistent });
  out.push({ name: 'message 1 metadata length = -100', bytes: setInt32(valid, messages[1]!.metaLength, -100) });
  out.push({ name: 'message 1 metadata length = 2^30', bytes: setInt32(valid, messages[1]!.metaLength, 2 ** 30) });
  if (String.fromCharCode(...valid.subarray(0, 6)) === 'ARROW1') {
    const footerLen = valid.length - 10;
    for (const v of [-1, 0, 2 ** 30, valid.length]) out.push({ name: `footer length = ${v}`, bytes: setInt32(valid, footerLen, v) });
    const blocks = arrowFooterBlocks(valid);
    for (const v of [-1n, 2n ** 40n]) {
      out.push({ name: `footer block 1 offset = ${v}`, bytes: setInt64(valid, blocks[1]!.offset, v) });
      out.push({ name: `footer block 1 bodyLength = ${v}`, bytes: setInt64(valid, blocks[1]!.bodyLength, v) });
    }
    out.push({ name: 'footer block 1 metaDataLength = -1', bytes: setInt32(valid, blocks[1]!.metaLength, -1) });
  }
  return out;
}

// -- Parquet: the footer is Thrift compact protocol -----------------------------------------

/** An integer field of the Parquet footer: its path (field ids, list indexes) and its varint bytes. */
export interface ThriftInt {
  path: string;
  start: number;
  end: number;
}

/** Lists every integer field of a Thrift compact-encoded struct, with where its varint sits. */
export function thriftInts(bytes: Uint8Array, from = 0): { ints: ThriftInt[]; end: number } {
  const ints: ThriftInt[] = [];
  let pos = from;
  const varint = (): number => {
    let v = 0;
    let shift = 1;
    for (;;) {
      const b = bytes[pos++]!;
      v += (b & 0x7f) * shift;
      if (b < 0x80) return v;
      shift *= 128;
    }
  };
  const value = (type: number, path: string): void => {
    switch (type) {
      case 1:
      case 2:
        return;
      case 3:
        pos++;
        return;
      case 4:
      case 5:
      case 6: {
        const start = pos;
        varint();
        ints.push({ path, start, end: pos });
        return;
      }
      case 7:
        pos += 8;
        return;
      case 8: {
        const n = varint();
        pos += n;
        return;
      }
      case 9:
      case 10: {
        const head = bytes[pos++]!;
        const size = head >> 4 === 15 ? varint() : head >> 4;
        for (let i = 0; i < size; i++) {
          if ((head & 0x0f) === 1 || (head & 0x0f) === 2) pos++;
          else value(head & 0x0f, `${path}[${i}]`);
        }
        return;
      }
      case 11: {
        const size = varint();
        if (size === 0) return;
        const kv = bytes[pos++]!;
        for (let i = 0; i < size; i++) {
          value(kv >> 4, `${path}{k${i}}`);
          value(kv & 0x0f, `${path}{v${i}}`);
        }
        return;
      }
      case 12:
        struct(path);
        return;
      default:
        throw new Error(`thrift type ${type} at byte ${pos}`);
    }
  };
  const struct = (path: string): void => {
    let id = 0;
    for (;;) {
      const head = bytes[pos++]!;
      if (head === 0) return;
      const delta = head >> 4;
      if (delta === 0) {
        const z = varint();
        id = (z >>> 1) ^ -(z & 1);
      } else {
        id += delta;
      }
      value(head & 0x0f, path === '' ? String(id) : `${path}.${id}`);
    }
  };
  struct('');
  return { ints, end: pos };
}

function zigzagVarint(v: bigint): number[] {
  let z = v >= 0n ? v << 1n : (-v << 1n) - 1n;
  const out: number[] = [];
  do {
    const b = Number(z & 0x7fn);
    z >>= 7n;
    out.push(z > 0n ? b | 0x80 : b);
  } while (z > 0n);
  return out;
}

/** The Parquet file with the footer integer at `field` replaced by `value` (the footer length is fixed up). */
function setParquetInt(valid: Uint8Array, field: ThriftInt, footerStart: number, value: bigint): Uint8Array {
  const enc = zigzagVarint(value);
  const out = new Uint8Array(valid.length - (field.end - field.start) + enc.length);
  out.set(valid.subarray(0, field.start), 0);
  out.set(enc, field.start);
  out.set(valid.subarray(field.end), field.start + enc.length);
  const footerLen = out.length - 8 - footerStart;
  new DataView(out.buffer).setInt32(out.length - 8, footerLen, true);
  return out;
}

/** Where the Parquet footer (FileMetaData) starts, and its integer fields. */
export function parquetFooter(valid: Uint8Array): { start: number; ints: ThriftInt[] } {
  const len = new DataView(valid.buffer, valid.byteOffset).getInt32(valid.length - 8, true);
  const start = valid.length - 8 - len;
  return { start, ints: thriftInts(valid, start).ints };
}

/** Damaged copies of a valid Parquet file. */
export function parquetMutants(valid: Uint8Array): Mutant[] {
  const { start, ints } = parquetFooter(valid);
  const out: Mutant[] = [...truncations(valid), ...flips(valid, 17, 10), ...flips(valid, 31, 6, [[start, valid.length - 8]])];
  const field = (path: string) => ints.find((f) => f.path === path);
  // FileMetaData: 3 num_rows, 4 row_groups; RowGroup: 1 columns, 2 total_byte_size, 3 num_rows;
  // ColumnChunk: 2 file_offset, 3 meta_data; ColumnMetaData: 5 num_values, 6/7 sizes, 9 data_page_offset
  const aimed: Array<[string, string]> = [
    ['3', 'file num_rows'],
    ['4[0].3', 'row group 0 num_rows'],
    ['4[1].3', 'row group 1 num_rows'],
    ['4[0].2', 'row group 0 total_byte_size'],
    ['4[1].1[1].3.5', 'row group 1 pixels num_values'],
    ['4[1].1[1].3.7', 'row group 1 pixels total_compressed_size'],
    ['4[1].1[1].3.9', 'row group 1 pixels data_page_offset'],
    ['4[0].1[0].3.9', 'row group 0 id data_page_offset'],
  ];
  for (const [path, what] of aimed) {
    const f = field(path);
    if (!f) throw new Error(`no Parquet footer field ${path} (${what})`);
    for (const v of [-1n, -(2n ** 40n), 2n ** 31n, 2n ** 40n, 2n ** 62n]) out.push({ name: `${what} = ${v}`, bytes: setParquetInt(valid, f, start, v) });
  }
  const all = [field('3')!, field('4[0].3')!, field('4[1].3')!, field('4[2].3')!];
  // consistent damage: the file's and every row group's row counts agree, the column chunks do not
  let consistent = valid;
  for (const f of all.slice().reverse()) consistent = setParquetInt(consistent, f, start, f.path === '3' ? 3n * 2n ** 40n : 2n ** 40n);
  out.push({ name: 'every row count x 2^40', bytes: consistent });
  const footerLen = valid.length - 8;
  for (const v of [-1, 0, 2 ** 30, valid.length]) out.push({ name: `footer length = ${v}`, bytes: setInt32(valid, footerLen, v) });
  return out;
}

// -- JSONL --------------------------------------------------------------------------------

/** JSONL with line `at` replaced by one of about `bytes` bytes (a row whose id is that long). */
export function jsonlWithLongLine(at: number, bytes: number, newline = true): Uint8Array {
  const head = Array.from({ length: at }, (_, r) => jsonlLine(r) + '\n').join('');
  const tail = Array.from({ length: FUZZ_ROWS - at - 1 }, (_, r) => jsonlLine(at + 1 + r) + '\n').join('');
  const long = `{"id":"${'x'.repeat(Math.max(0, bytes - 40))}","pixels":[0]}`;
  return enc.encode(newline ? head + long + '\n' + tail : head + tail + long);
}

/** Damaged copies of a valid JSONL file (the long-line ones are built separately: they are big). */
export function jsonlMutants(valid: Uint8Array): Mutant[] {
  const out: Mutant[] = [...truncations(valid), ...flips(valid, 7, 16)];
  const text = new TextDecoder().decode(valid);
  const newlines: number[] = [];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) newlines.push(i);
  const joined = valid.slice();
  joined[newlines[3]!] = 0x20;
  out.push({ name: 'two lines joined', bytes: joined });
  const split = valid.slice();
  split[newlines[5]! + 40] = 0x0a;
  out.push({ name: 'a line split in two', bytes: split });
  const badUtf8 = valid.slice();
  badUtf8.set([0xc3, 0x28], newlines[7]! + 10);
  out.push({ name: 'invalid UTF-8 in an id', bytes: badUtf8 });
  const nul = valid.slice();
  nul.fill(0, newlines[9]! + 1, newlines[10]!);
  out.push({ name: 'a line of NUL bytes', bytes: nul });
  out.push({ name: 'CRLF line ends', bytes: enc.encode(text.replaceAll('\n', '\r\n')) });
  out.push({ name: 'no final newline', bytes: valid.slice(0, valid.length - 1) });
  out.push({ name: 'blank lines only', bytes: enc.encode('\n \n\t\n') });
  out.push({ name: 'first line an array', bytes: enc.encode('[1,2]\n' + text) });
  return out;
}
