// Thrift compact protocol, as Parquet stores its footer and page headers: enough to read a
// struct into a tree (every length checked against the bytes that hold it), change a few
// integers, and write it back.

/** Wire types of the compact protocol. */
export const T = {
  STOP: 0,
  TRUE: 1,
  FALSE: 2,
  BYTE: 3,
  I16: 4,
  I32: 5,
  I64: 6,
  DOUBLE: 7,
  BINARY: 8,
  LIST: 9,
  SET: 10,
  MAP: 11,
  STRUCT: 12,
} as const;

export type ThriftValue =
  | { type: typeof T.TRUE | typeof T.FALSE }
  | { type: typeof T.BYTE | typeof T.I16 | typeof T.I32 | typeof T.I64; value: bigint }
  | { type: typeof T.DOUBLE | typeof T.BINARY; bytes: Uint8Array }
  | { type: typeof T.LIST | typeof T.SET; elem: number; items: ThriftValue[] }
  | { type: typeof T.MAP; key: number; value: number; entries: Array<[ThriftValue, ThriftValue]> }
  | ThriftStruct;

export interface ThriftStruct {
  type: typeof T.STRUCT;
  fields: Array<{ id: number; value: ThriftValue }>;
}

/** Bytes that are not a well-formed struct; `at` is the byte where reading failed. */
export class ThriftError extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(`${message} at byte ${at}`);
  }
}

/** Nesting deeper than this is not Parquet metadata. */
const MAX_DEPTH = 32;

class Reader {
  pos: number;

  constructor(
    private readonly bytes: Uint8Array,
    from: number,
    private readonly end: number,
  ) {
    this.pos = from;
  }

  byte(): number {
    if (this.pos >= this.end) throw new ThriftError('the struct is cut short', this.pos);
    return this.bytes[this.pos++]!;
  }

  varint(): bigint {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.byte();
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    throw new ThriftError('a varint longer than 10 bytes', this.pos);
  }

  zigzag(): bigint {
    const z = this.varint();
    return (z >> 1n) ^ -(z & 1n);
  }

  /** a count (list size, binary length) that must fit in the bytes left, at `min` bytes per item */
  count(min: number): number {
    const at = this.pos;
    const n = this.varint();
    if (n > BigInt(Math.floor((this.end - this.pos) / min))) throw new ThriftError(`a length of ${n} with ${this.end - this.pos} bytes left`, at);
    return Number(n);
  }

  take(n: number): Uint8Array {
    if (n > this.end - this.pos) throw new ThriftError(`${n} bytes wanted with ${this.end - this.pos} left`, this.pos);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  value(type: number, depth: number, inCollection: boolean): ThriftValue {
    if (depth > MAX_DEPTH) throw new ThriftError(`nested more than ${MAX_DEPTH} levels`, this.pos);
    switch (type) {
      case T.TRUE:
      case T.FALSE:
        // a bool in a list or map is a byte of its own; in a struct the field type is the value
        if (!inCollection) return { type };
        return { type: this.byte() === T.TRUE ? T.TRUE : T.FALSE };
      case T.BYTE:
        return { type, value: BigInt(this.byte()) };
      case T.I16:
      case T.I32:
      case T.I64:
        return { type, value: this.zigzag() };
      case T.DOUBLE:
        return { type, bytes: this.take(8) };
      case T.BINARY:
        return { type, bytes: this.take(this.count(1)) };
      case T.LIST:
      case T.SET: {
        const head = this.byte();
        const elem = head & 0x0f;
        const size = head >> 4 === 15 ? this.count(1) : head >> 4;
        if (size > this.end - this.pos) throw new ThriftError(`a list of ${size} items with ${this.end - this.pos} bytes left`, this.pos);
        const items: ThriftValue[] = [];
        for (let i = 0; i < size; i++) items.push(this.value(elem, depth + 1, true));
        return { type, elem, items };
      }
      case T.MAP: {
        const size = this.count(2);
        if (size === 0) return { type, key: 0, value: 0, entries: [] };
        const kv = this.byte();
        const entries: Array<[ThriftValue, ThriftValue]> = [];
        for (let i = 0; i < size; i++) entries.push([this.value(kv >> 4, depth + 1, true), this.value(kv & 0x0f, depth + 1, true)]);
        return { type, key: kv >> 4, value: kv & 0x0f, entries };
      }
      case T.STRUCT:
        return this.struct(depth + 1);
      default:
        throw new ThriftError(`unknown field type ${type}`, this.pos - 1);
    }
  }

  struct(depth: number): ThriftStruct {
    const fields: ThriftStruct['fields'] = [];
    let id = 0;
    for (;;) {
      const head = this.byte();
      if (head === T.STOP) return { type: T.STRUCT, fields };
      const delta = head >> 4;
      id = delta === 0 ? Number(this.zigzag()) : id + delta;
      fields.push({ id, value: this.value(head & 0x0f, depth, false) });
    }
  }
}

/** Reads the struct that starts at `from` (and ends before `end`); returns it and where it ends. */
export function readStruct(bytes: Uint8Array, from = 0, end = bytes.length): { struct: ThriftStruct; end: number } {
  const r = new Reader(bytes, from, end);
  const struct = r.struct(0);
  return { struct, end: r.pos };
}

class Writer {
  private chunks: number[] = [];
  private parts: Uint8Array[] = [];

  byte(b: number): void {
    this.chunks.push(b & 0xff);
  }

  varint(v: bigint): void {
    let z = v;
    do {
      const b = Number(z & 0x7fn);
      z >>= 7n;
      this.byte(z > 0n ? b | 0x80 : b);
    } while (z > 0n);
  }

  zigzag(v: bigint): void {
    this.varint(v >= 0n ? v << 1n : (-v << 1n) - 1n);
  }

  bytes(b: Uint8Array): void {
    this.flush();
    this.parts.push(b);
  }

  private flush(): void {
    if (this.chunks.length > 0) this.parts.push(Uint8Array.from(this.chunks));
    this.chunks = [];
  }

  value(v: ThriftValue, inCollection: boolean): void {
    switch (v.type) {
      case T.TRUE:
      case T.FALSE:
        if (inCollection) this.byte(v.type);
        return;
      case T.BYTE:
        this.byte(Number(v.value));
        return;
      case T.I16:
      case T.I32:
      case T.I64:
        this.zigzag(v.value);
        return;
      case T.DOUBLE:
        this.bytes(v.bytes);
        return;
      case T.BINARY:
        this.varint(BigInt(v.bytes.length));
        this.bytes(v.bytes);
        return;
      case T.LIST:
      case T.SET:
        if (v.items.length < 15) this.byte((v.items.length << 4) | v.elem);
        else {
          this.byte(0xf0 | v.elem);
          this.varint(BigInt(v.items.length));
        }
        for (const item of v.items) this.value(item, true);
        return;
      case T.MAP:
        this.varint(BigInt(v.entries.length));
        if (v.entries.length === 0) return;
        this.byte((v.key << 4) | v.value);
        for (const [k, val] of v.entries) {
          this.value(k, true);
          this.value(val, true);
        }
        return;
      case T.STRUCT:
        this.struct(v);
        return;
      default: {
        const never: never = v;
        throw new Error(`unknown thrift value ${String(never)}`);
      }
    }
  }

  struct(s: ThriftStruct): void {
    let last = 0;
    for (const f of s.fields) {
      const delta = f.id - last;
      if (delta > 0 && delta <= 15) this.byte((delta << 4) | f.value.type);
      else {
        this.byte(f.value.type);
        this.zigzag(BigInt(f.id));
      }
      this.value(f.value, false);
      last = f.id;
    }
    this.byte(T.STOP);
  }

  done(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** The compact encoding of a struct. */
export function writeStruct(s: ThriftStruct): Uint8Array {
  const w = new Writer();
  w.struct(s);
  return w.done();
}

/** Field `id` of a struct, or undefined. */
export function fieldOf(s: ThriftStruct, id: number): ThriftValue | undefined {
  return s.fields.find((f) => f.id === id)?.value;
}

/** An integer field, exactly; undefined when absent; throws when it is not an integer. */
export function bigintOf(s: ThriftStruct, id: number): bigint | undefined {
  const v = fieldOf(s, id);
  if (v === undefined) return undefined;
  if (v.type !== T.BYTE && v.type !== T.I16 && v.type !== T.I32 && v.type !== T.I64) throw new Error(`field ${id} is not an integer (type ${v.type})`);
  return v.value;
}

/** An integer field as a number (inexact beyond 2^53, where no count or offset is valid anyway); undefined when absent. */
export function intOf(s: ThriftStruct, id: number): number | undefined {
  const v = bigintOf(s, id);
  return v === undefined ? undefined : Number(v);
}

/** A struct field; undefined when absent; throws when it is something else. */
export function structOf(s: ThriftStruct, id: number): ThriftStruct | undefined {
  const v = fieldOf(s, id);
  if (v === undefined) return undefined;
  if (v.type !== T.STRUCT) throw new Error(`field ${id} is not a struct (type ${v.type})`);
  return v;
}

/** A list field's items; undefined when absent; throws when it is something else. */
export function listOf(s: ThriftStruct, id: number): ThriftValue[] | undefined {
  const v = fieldOf(s, id);
  if (v === undefined) return undefined;
  if (v.type !== T.LIST) throw new Error(`field ${id} is not a list (type ${v.type})`);
  return v.items;
}

/** Sets (or adds, keeping ids in order) an i64/i32 field; `undefined` removes it. */
export function setInt(s: ThriftStruct, id: number, value: number | undefined, type: typeof T.I32 | typeof T.I64 = T.I64): void {
  const at = s.fields.findIndex((f) => f.id === id);
  if (value === undefined) {
    if (at >= 0) s.fields.splice(at, 1);
    return;
  }
  const v: ThriftValue = { type: at >= 0 && s.fields[at]!.value.type === T.I32 ? T.I32 : type, value: BigInt(value) };
  if (at >= 0) s.fields[at] = { id, value: v };
  else {
    const before = s.fields.findIndex((f) => f.id > id);
    s.fields.splice(before < 0 ? s.fields.length : before, 0, { id, value: v });
  }
}
