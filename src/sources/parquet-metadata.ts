import type { FileHandle } from 'node:fs/promises';
import { DamagedTableError } from './errors.js';
import { readFully } from './npy.js';
import { bigintOf, fieldOf, intOf, listOf, readStruct, setInt, structOf, T, ThriftError, writeStruct } from './thrift-compact.js';
import type { ThriftStruct, ThriftValue } from './thrift-compact.js';

// A Parquet file's footer (FileMetaData) read and checked in JS before parquet-wasm sees any of
// it: every row count against the column chunks that hold the rows, every chunk inside the
// file, every page header inside its chunk. A row group is then handed to parquet-wasm as a
// little file of its own (its column chunks, read straight into place, and a footer that lists
// only them), which the synchronous reader decodes: a damaged page there is an error that can
// be caught, where the streaming reader turns it into a panic that ends the process.

const MAGIC = 'PAR1';
/** int32 footer length + "PAR1" */
const TAIL = 8;

/** One column chunk of a row group: a leaf column's bytes. */
export interface ParquetChunk {
  /** the leaf's path in the schema, e.g. ['pixels', 'list', 'item'] */
  path: string[];
  /** first byte of the chunk (its dictionary page, else its first data page) */
  start: number;
  bytes: number;
  /** level entries in the chunk: the row count for a leaf with no repeated ancestor, at least that for lists */
  values: number;
}

export interface ParquetRowGroup {
  rows: number;
  chunks: ParquetChunk[];
}

export interface ParquetMetadata {
  /** the decoded FileMetaData, kept to write row-group files from */
  meta: ThriftStruct;
  rows: number;
  rowGroups: ParquetRowGroup[];
}

/** A leaf column of the schema and how many repeated fields lead to it. */
interface Leaf {
  path: string[];
  repeated: number;
}

/**
 * Reads and checks the footer of an open Parquet file. Anything that does not fit (a length
 * past the file, a negative or disagreeing count) is a {@link DamagedTableError}.
 */
export async function readParquetMetadata(fh: FileHandle, file: string): Promise<ParquetMetadata> {
  const damaged = (reason: string, cause?: unknown) => new DamagedTableError(file, reason, cause === undefined ? undefined : { cause });
  const { size } = await fh.stat();
  if (size < MAGIC.length + TAIL) throw damaged(`not a readable Parquet file: it has ${size} bytes`);
  const head = new Uint8Array(4);
  await readFully(fh, head, 0, file);
  const tail = new Uint8Array(TAIL);
  await readFully(fh, tail, size - TAIL, file);
  if (ascii(head) === 'PARE' || ascii(tail.subarray(4)) === 'PARE') throw damaged('encrypted Parquet files are not supported');
  if (ascii(head) !== MAGIC) throw damaged('not a readable Parquet file (no PAR1 at the start)');
  if (ascii(tail.subarray(4)) !== MAGIC) throw damaged('not a readable Parquet file (no PAR1 at the end: the file is truncated or still being written)');
  const footerLen = new DataView(tail.buffer).getInt32(0, true);
  const room = size - MAGIC.length - TAIL;
  if (footerLen <= 0 || footerLen > room) throw damaged(`the footer length says ${footerLen} bytes, but the file has room for ${room}`);
  const footerStart = size - TAIL - footerLen;
  const bytes = new Uint8Array(footerLen);
  await readFully(fh, bytes, footerStart, file);
  let meta: ThriftStruct;
  try {
    meta = readStruct(bytes).struct;
  } catch (err) {
    if (err instanceof ThriftError) throw damaged(`unreadable footer: ${err.message}`, err);
    throw err;
  }
  try {
    return checkMetadata(meta, footerStart);
  } catch (err) {
    if (err instanceof FooterProblem) throw damaged(err.message);
    // a field of the wrong type: the footer decodes, but not as Parquet metadata
    throw damaged(`unreadable footer: ${(err as Error).message}`, err);
  }
}

class FooterProblem extends Error {}

function checkMetadata(meta: ThriftStruct, footerStart: number): ParquetMetadata {
  const problem = (text: string) => new FooterProblem(text);
  if (fieldOf(meta, 8) !== undefined) throw problem('encrypted Parquet files are not supported (the footer names an encryption algorithm)');
  const leaves = schemaLeaves(listOf(meta, 2) ?? []);
  const rows = count(bigintOf(meta, 3), 'the file', 'num_rows', 'says it has # rows');
  const rowGroups: ParquetRowGroup[] = [];
  for (const [g, item] of (listOf(meta, 4) ?? []).entries()) {
    const rg = asStruct(item, `row group ${g}`);
    const rgRows = count(bigintOf(rg, 3), `row group ${g}`, 'num_rows', 'says it has # rows');
    const total = bigintOf(rg, 2);
    if (total !== undefined && total < 0n) throw problem(`row group ${g} says it is ${total} bytes`);
    const columns = listOf(rg, 1) ?? [];
    if (columns.length !== leaves.length) throw problem(`row group ${g} has ${columns.length} column chunks, but the schema has ${leaves.length} columns`);
    const chunks = columns.map((c, i): ParquetChunk => {
      const leaf = leaves[i]!;
      const name = `row group ${g} column '${leaf.path.join('.')}'`;
      const cc = asStruct(c, name);
      if (fieldOf(cc, 1) !== undefined) throw problem(`${name} is stored in another file, which is not supported`);
      if (fieldOf(cc, 8) !== undefined || fieldOf(cc, 9) !== undefined) throw problem('encrypted Parquet files are not supported');
      const md = structOf(cc, 3);
      if (!md) throw problem(`${name} has no metadata`);
      const values = count(bigintOf(md, 5), name, 'num_values', 'says it has # values');
      const bytes = count(bigintOf(md, 7), name, 'total_compressed_size', 'says it is # bytes');
      count(bigintOf(md, 6), name, 'total_uncompressed_size', 'says it is # bytes uncompressed');
      const data = count(bigintOf(md, 9), name, 'data_page_offset', 'says its data starts at byte #');
      const rawDict = bigintOf(md, 11);
      // 0 is what some writers store for "no dictionary page" (the file's magic is there)
      const dict = rawDict === undefined || rawDict === 0n ? null : count(rawDict, name, 'dictionary_page_offset', 'says its dictionary starts at byte #');
      const start = dict === null ? data : Math.min(dict, data);
      const inside = (at: number) => at >= start && at < start + bytes;
      if (start < MAGIC.length || start + bytes > footerStart || !inside(data) || (dict !== null && !inside(dict))) {
        throw problem(`${name} says it is ${bytes} bytes at byte ${start} (data at ${data}), which is not inside the ${footerStart} bytes before the footer`);
      }
      if (leaf.repeated === 0 ? values !== rgRows : values < rgRows) {
        throw problem(`row group ${g} says it has ${rgRows} rows, but its column '${leaf.path.join('.')}' has ${values} values`);
      }
      return { path: leaf.path, start, bytes, values };
    });
    rowGroups.push({ rows: rgRows, chunks });
  }
  const sum = rowGroups.reduce((a, g) => a + g.rows, 0);
  if (sum !== rows) throw problem(`the file says it has ${rows} rows, but its row groups hold ${sum}`);
  return { meta, rows, rowGroups };
}

/** A non-negative safe integer; else a FooterProblem: "<subject> <phrase with # as the value>" or "<subject> has no <field>". */
function count(n: bigint | undefined, subject: string, field: string, phrase: string): number {
  if (n === undefined) throw new FooterProblem(`${subject} has no ${field}`);
  if (n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new FooterProblem(`${subject} ${phrase.replace('#', String(n))}`);
  return Number(n);
}

function asStruct(v: ThriftValue, what: string): ThriftStruct {
  if (v.type !== T.STRUCT) throw new FooterProblem(`${what} is not a struct`);
  return v;
}

/** The schema's leaf columns in order, with the number of repeated fields on the way to each. */
function schemaLeaves(elements: ThriftValue[]): Leaf[] {
  const leaves: Leaf[] = [];
  let next = 0;
  const walk = (path: string[], repeated: number, depth: number): void => {
    const item = elements[next];
    if (!item) throw new FooterProblem(`the schema lists fewer elements than its fields have children`);
    const el = asStruct(item, `schema element ${next}`);
    next++;
    const nameField = fieldOf(el, 4);
    const name = nameField?.type === T.BINARY ? new TextDecoder().decode(nameField.bytes) : '';
    const rep = repeated + (intOf(el, 3) === 2 ? 1 : 0);
    const children = intOf(el, 5) ?? 0;
    if (!Number.isSafeInteger(children) || children < 0 || children > elements.length - next)
      throw new FooterProblem(`schema element '${name}' says it has ${children} children`);
    if (depth > 64) throw new FooterProblem('the schema is nested more than 64 levels');
    const here = depth === 0 ? [] : [...path, name];
    if (children === 0 && depth > 0) leaves.push({ path: here, repeated: rep });
    for (let i = 0; i < children; i++) walk(here, rep, depth + 1);
  };
  if (elements.length === 0) throw new FooterProblem('the file has no schema');
  walk([], 0, 0);
  if (next !== elements.length) throw new FooterProblem(`the schema lists ${elements.length} elements, but its fields use ${next}`);
  return leaves;
}

/** A Parquet file of the footer alone, without row groups: enough to read the schema from. */
export function schemaOnlyFile(metadata: ParquetMetadata): Uint8Array {
  const meta = withoutRowGroups(metadata.meta);
  setInt(meta, 3, 0);
  replaceField(meta, 4, { type: T.LIST, elem: T.STRUCT, items: [] });
  return fileOf(meta, 0);
}

/** A one-row-group Parquet file whose column chunks are still to be filled in. */
export interface RowGroupFile {
  bytes: Uint8Array;
  /** for each column chunk to fill in (by its leaf index in the original file), where its bytes go in `bytes` */
  slots: Map<number, number>;
}

/**
 * The layout of a Parquet file holding row group `g` alone, and of it only the top-level
 * columns named in `keep` (parquet-wasm's synchronous reader reads every column it is given):
 * the schema, column orders and row group pruned to them and the chunk offsets moved, so the
 * caller reads each kept chunk into its slot. `arrowSchema` replaces the `ARROW:schema` hint
 * (Arrow writers store the Arrow types there) with one for the kept columns; without it the
 * hint is dropped.
 */
export function rowGroupFile(metadata: ParquetMetadata, g: number, keep: ReadonlySet<string>, arrowSchema?: string): RowGroupFile {
  const meta = withoutRowGroups(metadata.meta);
  const info = metadata.rowGroups[g]!;
  const kept = info.chunks.flatMap((c, i) => (keep.has(c.path[0] ?? '') ? [i] : []));
  pruneSchema(meta, keep);
  const orders = listOf(meta, 7);
  if (orders) replaceField(meta, 7, { type: T.LIST, elem: T.STRUCT, items: kept.map((i) => orders[i]!) });
  replaceArrowSchema(meta, arrowSchema);

  const original = asStruct((listOf(metadata.meta, 4) ?? [])[g]!, `row group ${g}`);
  const rg: ThriftStruct = { type: T.STRUCT, fields: original.fields.filter((f) => f.id === 2 || f.id === 3) };
  const columns = listOf(original, 1) ?? [];
  const slots = new Map<number, number>();
  const items: ThriftValue[] = [];
  let at = MAGIC.length;
  let uncompressed = 0;
  for (const i of kept) {
    const cc = structuredClone(asStruct(columns[i]!, `column chunk ${i}`));
    const md = structOf(cc, 3)!;
    const chunk = info.chunks[i]!;
    // page indexes and bloom filters live elsewhere in the original file; nothing here uses them
    for (const id of [4, 5, 6, 7]) setInt(cc, id, undefined);
    for (const id of [14, 15]) setInt(md, id, undefined);
    const shift = (v: number | undefined) => (v === undefined || v === 0 ? v : v - chunk.start + at);
    setInt(md, 9, shift(intOf(md, 9)));
    setInt(md, 10, shift(intOf(md, 10)));
    setInt(md, 11, shift(intOf(md, 11)));
    setInt(cc, 2, at);
    items.push(cc);
    slots.set(i, at);
    uncompressed += intOf(md, 6) ?? 0;
    at += chunk.bytes;
  }
  replaceField(rg, 1, { type: T.LIST, elem: T.STRUCT, items });
  setInt(rg, 2, uncompressed);
  setInt(meta, 3, info.rows);
  replaceField(meta, 4, { type: T.LIST, elem: T.STRUCT, items: [rg] });
  return { bytes: fileOf(meta, at - MAGIC.length), slots };
}

/** Keeps the schema's top-level fields named in `keep` (with everything under them). */
function pruneSchema(meta: ThriftStruct, keep: ReadonlySet<string>): void {
  const elements = (listOf(meta, 2) ?? []).map((e, i) => asStruct(e, `schema element ${i}`));
  const root = elements[0];
  if (!root) return;
  const out: ThriftValue[] = [];
  let top = 0;
  for (let i = 1; i < elements.length;) {
    // a field and its descendants are the next 1 + (children, recursively) elements
    let end = i;
    for (let open = 1; open > 0 && end < elements.length; end++) open += (intOf(elements[end]!, 5) ?? 0) - 1;
    const name = fieldOf(elements[i]!, 4);
    if (name?.type === T.BINARY && keep.has(new TextDecoder().decode(name.bytes))) {
      out.push(...elements.slice(i, end));
      top++;
    }
    i = end;
  }
  const newRoot: ThriftStruct = { type: T.STRUCT, fields: root.fields.slice() };
  setInt(newRoot, 5, top, T.I32);
  replaceField(meta, 2, { type: T.LIST, elem: T.STRUCT, items: [newRoot, ...out] });
}

const ARROW_SCHEMA = 'ARROW:schema';

/** Replaces (or drops, when `value` is undefined) the ARROW:schema entry of the key-value metadata. */
function replaceArrowSchema(meta: ThriftStruct, value: string | undefined): void {
  const entries = listOf(meta, 5);
  if (!entries) return;
  const enc = new TextEncoder();
  const items: ThriftValue[] = [];
  for (const e of entries) {
    const key = e.type === T.STRUCT ? fieldOf(e, 1) : undefined;
    if (key?.type !== T.BINARY || new TextDecoder().decode(key.bytes) !== ARROW_SCHEMA) items.push(e);
    else if (value !== undefined)
      items.push({
        type: T.STRUCT,
        fields: [
          { id: 1, value: key },
          { id: 2, value: { type: T.BINARY, bytes: enc.encode(value) } },
        ],
      });
  }
  replaceField(meta, 5, { type: T.LIST, elem: T.STRUCT, items });
}

/** Whether the footer carries an ARROW:schema hint. */
export function hasArrowSchema(metadata: ParquetMetadata): boolean {
  return (listOf(metadata.meta, 5) ?? []).some((e) => {
    const key = e.type === T.STRUCT ? fieldOf(e, 1) : undefined;
    return key?.type === T.BINARY && new TextDecoder().decode(key.bytes) === ARROW_SCHEMA;
  });
}

/** The footer's other fields, shared (they are not changed), without its row count and row groups. */
function withoutRowGroups(meta: ThriftStruct): ThriftStruct {
  return { type: T.STRUCT, fields: meta.fields.filter((f) => f.id !== 3 && f.id !== 4) };
}

function replaceField(s: ThriftStruct, id: number, value: ThriftValue): void {
  const at = s.fields.findIndex((f) => f.id === id);
  if (at >= 0) s.fields[at] = { id, value };
  else s.fields.push({ id, value });
  s.fields.sort((a, b) => a.id - b.id);
}

/** PAR1, room for `dataBytes` of column chunks, the footer, its length, PAR1. */
function fileOf(meta: ThriftStruct, dataBytes: number): Uint8Array {
  const footer = writeStruct(meta);
  const out = new Uint8Array(MAGIC.length + dataBytes + footer.length + TAIL);
  const magic = new TextEncoder().encode(MAGIC);
  out.set(magic, 0);
  let at = MAGIC.length + dataBytes;
  out.set(footer, at);
  at += footer.length;
  new DataView(out.buffer).setInt32(at, footer.length, true);
  out.set(magic, at + 4);
  return out;
}

/**
 * Walks the pages of a column chunk (its bytes): each page header must decode, each page must
 * lie inside the chunk, a page with a checksum must match it, and the data pages must hold as
 * many values as the chunk's metadata says. Returns what is wrong, or null.
 */
export function checkPages(bytes: Uint8Array, chunk: ParquetChunk): string | null {
  let pos = 0;
  let values = 0;
  while (pos < bytes.length) {
    const where = `the page at byte ${chunk.start + pos}`;
    let header: ThriftStruct;
    let end: number;
    try {
      ({ struct: header, end } = readStruct(bytes, pos));
    } catch (err) {
      if (err instanceof ThriftError) return `unreadable page header at byte ${chunk.start + pos}: ${err.message.replace(/ at byte \d+$/, '')}`;
      throw err;
    }
    const int = (s: ThriftStruct | undefined, id: number): number | null => {
      try {
        const n = s ? intOf(s, id) : undefined;
        return n !== undefined && Number.isSafeInteger(n) ? n : null;
      } catch {
        return null;
      }
    };
    const compressed = int(header, 3);
    const uncompressed = int(header, 2);
    if (compressed === null || compressed < 0 || compressed > bytes.length - end) {
      return `${where} says it holds ${compressed ?? 'an unknown number of'} bytes, but ${bytes.length - end} remain in its column chunk`;
    }
    if (uncompressed === null || uncompressed < 0 || uncompressed > 0x7fffffff)
      return `${where} says it decompresses to ${uncompressed ?? 'an unknown number of'} bytes`;
    const crc = int(header, 4);
    if (crc !== null && crc32(bytes.subarray(end, end + compressed)) !== crc >>> 0) return `${where} does not match its checksum`;
    // data pages (0, v2: 3) count toward the chunk's values; a dictionary page (2) has its own count
    const type = int(header, 1);
    const headerOf = type === 0 ? 5 : type === 3 ? 8 : type === 2 ? 7 : null;
    if (headerOf !== null) {
      let sub: ThriftStruct | undefined;
      try {
        sub = structOf(header, headerOf);
      } catch {
        sub = undefined;
      }
      const n = int(sub, 1);
      if (n === null || n < 0) return `${where} says it has ${n ?? 'an unknown number of'} values`;
      if (type !== 2) values += n;
    }
    pos = end + compressed;
  }
  if (values !== chunk.values) return `its pages hold ${values} values, but its metadata says ${chunk.values}`;
  return null;
}

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE), as Parquet page checksums use. */
function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function ascii(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}
