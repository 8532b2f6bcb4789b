import { open, readFile, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { float16ToFloat32 } from '../types/float16.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
export const HOST_LITTLE_ENDIAN = endianness() === 'LE';

/** Element types layertap reads from .npy files; all are converted to float32. */
export type NpyDtype = 'float16' | 'float32' | 'float64';

/** What the header of a .npy file says, plus where its data starts. */
export interface NpyHeader {
  /** format version, e.g. [1, 0] */
  version: [number, number];
  /** the dtype string as written, e.g. '<f4' */
  descr: string;
  dtype: NpyDtype;
  littleEndian: boolean;
  bytesPerElement: number;
  shape: number[];
  /** byte offset of the first element */
  dataOffset: number;
  /** bytes of data the shape needs */
  dataBytes: number;
}

/** A whole .npy array, converted to float32. */
export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

/** Parses a .npy header from the file's first bytes (at least the preamble plus header); `file` names it in errors. */
export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error(`${file}: not a NumPy .npy file (missing the \\x93NUMPY magic)`);
  }
  const major = bytes[6] as number;
  const minor = bytes[7] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let preamble: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    preamble = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new Error(`${file}: .npy header is cut short`);
    headerLen = view.getUint32(8, true);
    preamble = 12;
  } else {
    throw new Error(`${file}: unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are supported)`);
  }
  if (bytes.length < preamble + headerLen) {
    throw new Error(`${file}: .npy header is cut short (needs ${preamble + headerLen} bytes, file has ${bytes.length})`);
  }
  // version 3 allows UTF-8 in the header (field names); 1 and 2 are latin1, a subset for what we read
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(preamble, preamble + headerLen));

  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  if (descr === undefined) {
    throw new Error(`${file}: .npy header has no simple 'descr' (structured dtypes are not supported): ${text.trim()}`);
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  if (fortran === undefined) throw new Error(`${file}: .npy header has no 'fortran_order': ${text.trim()}`);
  if (fortran === 'True') {
    throw new Error(`${file}: the array is stored in Fortran (column-major) order; save it C-ordered, e.g. np.save(path, np.ascontiguousarray(a))`);
  }
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (shapeText === undefined) throw new Error(`${file}: .npy header has no 'shape': ${text.trim()}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      if (!/^\d+$/.test(s)) throw new Error(`${file}: .npy shape has a non-integer dimension '${s}'`);
      return Number(s);
    });

  const m = /^([<>=|])f([248])$/.exec(descr);
  if (!m) {
    throw new Error(
      `${file}: dtype '${descr}' is not supported; layertap reads float32 ('<f4'), float64 ('<f8') and float16 ('<f2'): convert with a.astype(np.float32)`,
    );
  }
  const bytesPerElement = Number(m[2]);
  const order = m[1];
  const littleEndian = order === '<' || (order === '=' && HOST_LITTLE_ENDIAN);
  const dtype: NpyDtype = bytesPerElement === 2 ? 'float16' : bytesPerElement === 4 ? 'float32' : 'float64';
  const elements = shape.reduce((a, b) => a * b, 1);
  return {
    version: [major, minor],
    descr,
    dtype,
    littleEndian,
    bytesPerElement,
    shape,
    dataOffset: preamble + headerLen,
    dataBytes: elements * bytesPerElement,
  };
}

/** Reads and checks the header of an open .npy file, including that the file holds all the data its shape needs. */
export async function readNpyHeaderFrom(fh: FileHandle, file: string): Promise<NpyHeader> {
  const { size } = await fh.stat();
  const pre = new Uint8Array(Math.min(size, 12));
  await readFully(fh, pre, 0, file);
  let need = 10;
  if (pre.length >= 10 && MAGIC.every((b, i) => pre[i] === b)) {
    const v = new DataView(pre.buffer);
    need = pre[6] === 1 ? 10 + v.getUint16(8, true) : pre.length >= 12 ? 12 + v.getUint32(8, true) : 12;
  }
  const head = new Uint8Array(Math.min(size, need));
  await readFully(fh, head, 0, file);
  const header = parseNpyHeader(head, file);
  checkSize(header, size, file);
  return header;
}

/** Reads the header of a .npy file by path. */
export async function readNpyHeader(file: string): Promise<NpyHeader> {
  const fh = await open(file, 'r');
  try {
    return await readNpyHeaderFrom(fh, file);
  } finally {
    await fh.close();
  }
}

/** Reads a whole .npy file into memory as float32 (for tests and small arrays; NpySource streams). */
export async function readNpy(file: string): Promise<NpyArray> {
  const buf = await readFile(file);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const header = parseNpyHeader(bytes, file);
  checkSize(header, bytes.length, file);
  const elements = header.dataBytes / header.bytesPerElement;
  const data = new Float32Array(elements);
  decodeElements(bytes.subarray(header.dataOffset, header.dataOffset + header.dataBytes), header, data, 0);
  return { shape: header.shape, data };
}

/** Writes a C-ordered little-endian float32 .npy file (format 1.0, or 2.0 when the header needs it). */
export async function writeNpy(file: string, data: Float32Array, shape: readonly number[]): Promise<void> {
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`writeNpy ${file}: shape must be non-negative integers, got [${shape.join(', ')}]`);
  }
  const elements = shape.reduce((a, b) => a * b, 1);
  if (elements !== data.length) {
    throw new Error(`writeNpy ${file}: shape [${shape.join(', ')}] needs ${elements} values, data has ${data.length}`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // numpy pads the header with spaces and a newline so the data starts 64-byte aligned
  let preamble = 10;
  let total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  if (total - preamble > 0xffff) {
    preamble = 12;
    total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  }
  const headerLen = total - preamble;
  const head = new Uint8Array(total);
  head.set(MAGIC, 0);
  head[6] = preamble === 10 ? 1 : 2;
  head[7] = 0;
  const view = new DataView(head.buffer);
  if (preamble === 10) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  const padded = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  for (let i = 0; i < padded.length; i++) head[preamble + i] = padded.charCodeAt(i);

  let body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!HOST_LITTLE_ENDIAN) {
    body = new Uint8Array(data.length * 4);
    const dv = new DataView(body.buffer);
    for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i] as number, true);
  }
  await writeFile(file, [head, body]);
}

/**
 * Converts raw .npy element bytes to float32 into `out` at `outOffset`. The common case
 * (little-endian float32 on a little-endian host) is a plain byte copy.
 */
export function decodeElements(src: Uint8Array, header: NpyHeader, out: Float32Array, outOffset: number): void {
  const n = Math.floor(src.byteLength / header.bytesPerElement);
  if (header.dtype === 'float32' && header.littleEndian === HOST_LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset + outOffset * 4, n * 4).set(src.subarray(0, n * 4));
    return;
  }
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const le = header.littleEndian;
  if (header.dtype === 'float32') {
    for (let i = 0; i < n; i++) out[outOffset + i] = dv.getFloat32(i * 4, le);
  } else if (header.dtype === 'float64') {
    for (let i = 0; i < n; i++) out[outOffset + i] = dv.getFloat64(i * 8, le);
  } else {
    for (let i = 0; i < n; i++) out[outOffset + i] = float16ToFloat32(dv.getUint16(i * 2, le));
  }
}

/** Bytes asked of one read call: Node aborts the process on a read length that does not fit an int32. */
const MAX_READ = 1 << 30;

/** Reads exactly `buf.length` bytes at `position`, or fails naming the file. */
export async function readFully(fh: FileHandle, buf: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, Math.min(buf.length - done, MAX_READ), position + done);
    if (bytesRead === 0) {
      throw new Error(`${file}: unexpected end of file at byte ${position + done} (file truncated while reading?)`);
    }
    done += bytesRead;
  }
}

function checkSize(header: NpyHeader, size: number, file: string): void {
  const need = header.dataOffset + header.dataBytes;
  if (size < need) {
    throw new Error(`${file}: truncated .npy file: shape (${header.shape.join(', ')}) of ${header.descr} needs ${need} bytes, the file has ${size}`);
  }
}
