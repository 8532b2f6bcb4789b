import { DataType, DateUnit, IntervalUnit, MetadataVersion, Precision, UnionMode } from 'apache-arrow';
import type { Field } from 'apache-arrow';

// Checks of Arrow IPC metadata before Arrow JS decodes it. Arrow JS trusts what it reads: a
// flatbuffer vector length of 2^30 in a message makes it build 2^30 objects, and a record batch's
// row count is taken as it is. These checks bound every length by the bytes that hold it.

/** Which fields of a flatbuffer table refer to other data (scalars need no check: reading past a table yields zeros). */
interface Shape {
  refs: Record<number, Ref>;
}

type Ref =
  | { kind: 'string' }
  | { kind: 'table'; shape: () => Shape }
  | { kind: 'tables'; shape: () => Shape }
  /** a vector of structs or scalars of `size` bytes each */
  | { kind: 'structs'; size: number }
  /** a union: the type byte is field `typeField` of the same table */
  | { kind: 'union'; typeField: number; shape: (type: number) => Shape | null };

const PLAIN: Shape = { refs: {} };
const KEY_VALUE: Shape = { refs: { 0: { kind: 'string' }, 1: { kind: 'string' } } };
const KEY_VALUES: Ref = { kind: 'tables', shape: () => KEY_VALUE };

// Schema.fbs type tables: only Union (typeIds: [int]) and Timestamp (timezone: string) refer to other data
const TYPE_SHAPES: Record<number, Shape> = {
  10: { refs: { 1: { kind: 'string' } } },
  14: { refs: { 1: { kind: 'structs', size: 4 } } },
};
const FIELD: Shape = {
  refs: {
    0: { kind: 'string' },
    3: { kind: 'union', typeField: 2, shape: (t) => (t === 0 ? null : (TYPE_SHAPES[t] ?? PLAIN)) },
    4: { kind: 'table', shape: () => ({ refs: { 1: { kind: 'table', shape: () => PLAIN } } }) },
    5: { kind: 'tables', shape: () => FIELD },
    6: KEY_VALUES,
  },
};
const SCHEMA: Shape = { refs: { 1: { kind: 'tables', shape: () => FIELD }, 2: KEY_VALUES, 3: { kind: 'structs', size: 8 } } };
const RECORD_BATCH: Shape = {
  refs: { 1: { kind: 'structs', size: 16 }, 2: { kind: 'structs', size: 16 }, 3: { kind: 'table', shape: () => PLAIN }, 4: { kind: 'structs', size: 8 } },
};
const DICTIONARY_BATCH: Shape = { refs: { 1: { kind: 'table', shape: () => RECORD_BATCH } } };

/** Message header types layertap reads: 1 Schema, 2 DictionaryBatch, 3 RecordBatch (4, 5 are tensors). */
const MESSAGE: Shape = {
  refs: {
    2: { kind: 'union', typeField: 1, shape: (t) => (t === 1 ? SCHEMA : t === 2 ? DICTIONARY_BATCH : t === 3 ? RECORD_BATCH : null) },
    4: KEY_VALUES,
  },
};
const FOOTER: Shape = {
  refs: { 1: { kind: 'table', shape: () => SCHEMA }, 2: { kind: 'structs', size: 24 }, 3: { kind: 'structs', size: 24 }, 4: KEY_VALUES },
};

/** Nesting deeper than this is not a real schema. */
const MAX_DEPTH = 64;

class FlatbufferCheck {
  private readonly view: DataView;
  private visits = 0;
  private readonly maxVisits: number;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // every table takes at least 4 bytes; more visits means tables shared to multiply the work
    this.maxVisits = Math.max(64, bytes.byteLength / 4);
  }

  root(shape: Shape): void {
    this.table(this.offset(0, 'the root offset'), shape, 0, 'the root table');
  }

  private need(at: number, bytes: number, what: string): void {
    if (!Number.isSafeInteger(at) || at < 0 || at + bytes > this.bytes.byteLength) {
      throw new Error(`${what} points outside the ${this.bytes.byteLength}-byte metadata`);
    }
  }

  /** the position a uoffset at `at` refers to */
  private offset(at: number, what: string): number {
    this.need(at, 4, what);
    const target = at + this.view.getUint32(at, true);
    this.need(target, 4, what);
    return target;
  }

  private table(at: number, shape: Shape, depth: number, what: string): void {
    if (++this.visits > this.maxVisits) throw new Error(`${what}: more tables than the metadata can hold`);
    if (depth > MAX_DEPTH) throw new Error(`${what}: nested more than ${MAX_DEPTH} levels`);
    this.need(at, 4, what);
    const vtable = at - this.view.getInt32(at, true);
    this.need(vtable, 4, `${what}'s vtable`);
    const vtSize = this.view.getUint16(vtable, true);
    const tableSize = this.view.getUint16(vtable + 2, true);
    if (vtSize < 4 || vtSize % 2 !== 0) throw new Error(`${what}'s vtable has a size of ${vtSize} bytes`);
    this.need(vtable, vtSize, `${what}'s vtable`);
    this.need(at, Math.max(4, tableSize), what);
    const slot = (id: number): number | null => {
      if (4 + 2 * id + 2 > vtSize) return null;
      const off = this.view.getUint16(vtable + 4 + 2 * id, true);
      return off === 0 ? null : at + off;
    };
    for (const [key, ref] of Object.entries(shape.refs)) {
      const id = Number(key);
      const pos = slot(id);
      if (pos === null) continue;
      const name = `${what} field ${id}`;
      const target = this.offset(pos, name);
      switch (ref.kind) {
        case 'string':
          this.need(target + 4, this.view.getUint32(target, true), name);
          break;
        case 'table':
          this.table(target, ref.shape(), depth + 1, name);
          break;
        case 'union': {
          const typePos = slot(ref.typeField);
          const type = typePos === null ? 0 : (this.need(typePos, 1, name), this.view.getUint8(typePos));
          const inner = ref.shape(type);
          if (!inner) throw new Error(`${name} is of type ${type}, which is not read here`);
          this.table(target, inner, depth + 1, name);
          break;
        }
        case 'structs':
          this.need(target + 4, this.view.getUint32(target, true) * ref.size, name);
          break;
        case 'tables': {
          const n = this.view.getUint32(target, true);
          this.need(target + 4, n * 4, name);
          for (let i = 0; i < n; i++) this.table(this.offset(target + 4 + 4 * i, name), ref.shape(), depth + 1, `${name}[${i}]`);
          break;
        }
        default: {
          const never: never = ref;
          throw new Error(`unknown reference ${String(never)}`);
        }
      }
    }
  }
}

/** Throws an Error saying what is wrong when the bytes of a Message are not safe for Arrow JS to decode. */
export function checkMessageMetadata(bytes: Uint8Array): void {
  new FlatbufferCheck(bytes).root(MESSAGE);
}

/** Throws an Error saying what is wrong when the bytes of a file footer are not safe for Arrow JS to decode. */
export function checkFooterMetadata(bytes: Uint8Array): void {
  new FlatbufferCheck(bytes).root(FOOTER);
}

/** The layout parts of a decoded record batch header that are checked against its schema. */
export interface BatchLayout {
  length: number;
  nodes: ReadonlyArray<{ length: number; nullCount: number }>;
  buffers: ReadonlyArray<{ offset: number; length: number }>;
  compressed: boolean;
  variadicBufferCounts: readonly number[];
}

/**
 * Checks a record batch's own numbers: a non-negative row count, and every node and buffer
 * within the batch's body. Returns what is wrong, or null.
 */
export function checkBatchBounds(batch: BatchLayout, bodyLength: number): string | null {
  if (!Number.isSafeInteger(batch.length) || batch.length < 0) return `says it has ${batch.length} rows`;
  for (const [i, n] of batch.nodes.entries()) {
    if (!Number.isSafeInteger(n.length) || n.length < 0) return `says column node ${i} has ${n.length} values`;
    if (!Number.isSafeInteger(n.nullCount) || n.nullCount < 0 || n.nullCount > n.length)
      return `says column node ${i} has ${n.nullCount} nulls in ${n.length} values`;
  }
  for (const [i, b] of batch.buffers.entries()) {
    if (!Number.isSafeInteger(b.offset) || !Number.isSafeInteger(b.length) || b.offset < 0 || b.length < 0 || b.offset + b.length > bodyLength) {
      return `says buffer ${i} is ${b.length} bytes at offset ${b.offset} of a ${bodyLength}-byte body`;
    }
  }
  for (const c of batch.variadicBufferCounts)
    if (!Number.isSafeInteger(c) || c < 0 || c > batch.buffers.length) return `says a column has ${c} variadic buffers`;
  return null;
}

/**
 * Cross-checks a record batch against the fields it holds: as many nodes and buffers as the
 * types need, every top-level column as long as the batch, children as long as their parents
 * make them, and every buffer large enough for its node's values (for uncompressed bodies).
 * Returns what is wrong, or null.
 */
export function checkBatchLayout(batch: BatchLayout, fields: readonly Field[], version: MetadataVersion): string | null {
  const walk = new LayoutWalk(batch, version);
  try {
    for (const f of fields) {
      const length = walk.field(f.type, null);
      if (length !== batch.length) return `says it has ${batch.length} rows, but its column '${f.name}' has ${length}`;
    }
    if (walk.nodesUsed !== batch.nodes.length) return `has ${batch.nodes.length} column nodes, but its columns need ${walk.nodesUsed}`;
    if (walk.buffersUsed !== batch.buffers.length) return `has ${batch.buffers.length} buffers, but its columns need ${walk.buffersUsed}`;
    return null;
  } catch (err) {
    if (err instanceof LayoutProblem) return err.message;
    throw err;
  }
}

class LayoutProblem extends Error {}

class LayoutWalk {
  nodesUsed = 0;
  buffersUsed = 0;
  private variadicUsed = 0;

  constructor(
    private readonly batch: BatchLayout,
    private readonly version: MetadataVersion,
  ) {}

  /** Consumes the node and buffers of a column of `type` (and its children); returns its length. */
  field(type: DataType, expected: number | null): number {
    const node = this.batch.nodes[this.nodesUsed++];
    if (!node) throw new LayoutProblem(`has ${this.batch.nodes.length} column nodes, but its columns need more`);
    const n = node.length;
    if (expected !== null && n < expected) throw new LayoutProblem(`says a ${String(type)} child column has ${n} values where its parent needs ${expected}`);
    const bits = (bitsPerValue: number) => Math.ceil((n * bitsPerValue) / 8);
    if (DataType.isNull(type)) return n;
    if (!(DataType.isUnion(type) && this.version >= MetadataVersion.V5)) this.buffer(node.nullCount > 0 ? bits(1) : 0, 'validity');
    if (DataType.isDictionary(type)) {
      this.buffer(bits(type.indices.bitWidth), 'indices');
    } else if (DataType.isBool(type)) {
      this.buffer(bits(1), 'values');
    } else if (DataType.isInt(type) || DataType.isTime(type) || DataType.isDecimal(type)) {
      this.buffer(bits(type.bitWidth), 'values');
    } else if (DataType.isFloat(type)) {
      this.buffer(bits(type.precision === Precision.HALF ? 16 : type.precision === Precision.SINGLE ? 32 : 64), 'values');
    } else if (DataType.isDate(type)) {
      this.buffer(bits(type.unit === DateUnit.DAY ? 32 : 64), 'values');
    } else if (DataType.isTimestamp(type) || DataType.isDuration(type)) {
      this.buffer(bits(64), 'values');
    } else if (DataType.isInterval(type)) {
      this.buffer(bits(type.unit === IntervalUnit.YEAR_MONTH ? 32 : type.unit === IntervalUnit.DAY_TIME ? 64 : 128), 'values');
    } else if (DataType.isFixedSizeBinary(type)) {
      this.buffer(bits(8 * type.byteWidth), 'values');
    } else if (DataType.isBinary(type) || DataType.isUtf8(type)) {
      this.offsets(n, 4);
      this.buffer(0, 'data');
    } else if (DataType.isLargeBinary(type) || DataType.isLargeUtf8(type)) {
      this.offsets(n, 8);
      this.buffer(0, 'data');
    } else if (DataType.isBinaryView(type) || DataType.isUtf8View(type)) {
      this.buffer(bits(128), 'views');
      const extra = this.batch.variadicBufferCounts[this.variadicUsed++] ?? 0;
      for (let i = 0; i < extra; i++) this.buffer(0, 'data');
    } else if (DataType.isList(type) || DataType.isMap(type)) {
      this.offsets(n, 4);
      this.children(type, null);
    } else if (DataType.isLargeList(type)) {
      this.offsets(n, 8);
      this.children(type, null);
    } else if (DataType.isFixedSizeList(type)) {
      this.children(type, n * type.listSize);
    } else if (DataType.isStruct(type)) {
      this.children(type, n);
    } else if (DataType.isUnion(type)) {
      this.buffer(n, 'type ids');
      if (type.mode === UnionMode.Dense) this.buffer(bits(32), 'offsets');
      this.children(type, type.mode === UnionMode.Sparse ? n : null);
    } else {
      throw new LayoutProblem(`holds a column of type ${String(type)}, which layertap cannot check`);
    }
    return n;
  }

  private children(type: DataType, length: number | null): void {
    for (const child of type.children) this.field(child.type, length);
  }

  private offsets(n: number, width: number): void {
    this.buffer(n > 0 ? (n + 1) * width : 0, 'offsets');
  }

  private buffer(minBytes: number, what: string): void {
    const i = this.buffersUsed++;
    const b = this.batch.buffers[i];
    if (!b) throw new LayoutProblem(`has ${this.batch.buffers.length} buffers, but its columns need more`);
    // compressed buffers hold fewer bytes than their values; their sizes are checked once decompressed
    if (!this.batch.compressed && b.length < minBytes)
      throw new LayoutProblem(`says buffer ${i} (${what}) is ${b.length} bytes, but its column needs at least ${minBytes}`);
  }
}
