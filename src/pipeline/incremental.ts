import { DataType, makeVector, tableFromArrays, tableFromIPC, type Table, type Vector } from 'apache-arrow';
import { createXXHash128, type IHasher } from 'hash-wasm';
import type { ResolvedJob } from '../config/resolved.js';
import { readPartFile } from '../sinks/index.js';
import { MANIFEST, MANIFEST_SHARDS, rowIndexKey, runOfSuccessKey, runPrefix } from '../storage/layout.js';
import type { RunManifest } from '../sinks/manifest.js';
import type { Sink } from '../storage/types.js';
import type { SourceRow } from '../sources/types.js';

/**
 * Incremental runs. Every run writes, next to each part file, a row index
 * `_index/hashes-00000.arrow` (id, content_hash), row for row in part order. An incremental
 * run looks up each input's content hash in the latest committed run of the same dataset and
 * fingerprint and copies those vectors into its own part files instead of recomputing them, so
 * each committed run stays a complete snapshot that readers use on its own.
 */

/** The committed run an incremental run builds on. */
export interface BaseRun {
  runId: string;
  /** sink keys of the base run's part files and their row indexes, by shard */
  parts: Array<{ part: string; index: string }>;
  /** per tap column, the per-row shape the base run wrote */
  shapes: Record<string, number[]>;
  layout: 'nhwc' | 'nchw';
  runtime: string;
}

/**
 * Content hashes name their algorithm, so that an index written with another one (older runs
 * used sha256) never matches: those rows are recomputed instead of wrongly carried over.
 */
export const CONTENT_HASH_ALGORITHM = 'xxh3-128';

/** Hashes an input row's content: its file bytes for images, its float32 data for tensors. */
export type ContentHasher = (row: Extract<SourceRow, { kind: 'bytes' | 'tensor' | 'text' }>) => string;

/**
 * The content hash function: XXH3-128 of the row's bytes, as `xxh3-128:<32 hex>`. It detects
 * changed inputs (any change gives a different hash, except with probability 2^-128); it is
 * not a cryptographic hash, which runs 2-3 times slower on 600 KB tensor rows and is not needed
 * to tell an edited file from an unchanged one.
 */
export async function contentHasher(): Promise<ContentHasher> {
  return hashWith(await createXXHash128());
}

function hashWith(h: IHasher): ContentHasher {
  // synchronous: each call initialises, feeds and finishes the hash without yielding, so shards
  // processed at once can share one hasher
  return (row) => {
    h.init();
    if (row.kind === 'text') h.update(row.text);
    else h.update(row.kind === 'bytes' ? row.bytes : new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength));
    return `${CONTENT_HASH_ALGORITHM}:${h.digest('hex')}`;
  };
}

/**
 * Bytes of a row index file: the ids and content hashes of a part file's rows, in its order; for
 * a chunked text job also each row's chunk number, which tells where a document's rows begin.
 */
export function encodeRowIndex(ids: string[], hashes: string[], chunks?: number[]): Table {
  return chunks ? tableFromArrays({ id: ids, content_hash: hashes, chunk: Int32Array.from(chunks) }) : tableFromArrays({ id: ids, content_hash: hashes });
}

/** The newest committed run (it has `_SUCCESS`) of this dataset and fingerprint in the job's `sink`, or null. */
export async function findBaseRun(job: ResolvedJob, sink: Sink): Promise<BaseRun | null> {
  const base = `${job.name}/${job.fingerprint}/`;
  const keys = await sink.list(base);
  const committed = keys
    .map((k) => runOfSuccessKey(k.slice(base.length)))
    .filter((id): id is string => id !== null)
    .sort();
  for (let i = committed.length - 1; i >= 0; i--) {
    const runId = committed[i]!;
    const bytes = await sink.get(`${base}${runId}/${MANIFEST}`);
    if (!bytes) continue;
    const m = JSON.parse(Buffer.from(bytes).toString('utf8')) as RunManifest;
    const prefix = runPrefix(job.name, job.fingerprint, runId);
    const parts: BaseRun['parts'] = [];
    let complete = true;
    const present = new Set(keys);
    for (const s of await manifestShards(m, sink, `${base}${runId}/${MANIFEST_SHARDS}`)) {
      if (!s.file) continue;
      const idx = rowIndexKey(prefix, s.index);
      if (!present.has(idx)) {
        complete = false; // written before row indexes existed: not usable as a base
        break;
      }
      parts.push({ part: `${prefix}/${s.file.split('/').pop()!}`, index: idx });
    }
    const shapes: Record<string, number[]> = {};
    // a ragged column ([null, D]) is carried item by item: its shape here is one item's, as its features hold it
    for (const t of m.taps) {
      const shape = t.shape && t.layout === 'tokens' ? t.shape.slice(1) : t.shape;
      if (shape?.every((d): d is number => d !== null)) shapes[t.as] = shape;
    }
    // the runtime's layout, which a text model's columns ('pooled', 'tokens') do not name
    const layout = m.taps.map((t) => t.layout).find((l): l is 'nhwc' | 'nchw' => l === 'nhwc' || l === 'nchw') ?? 'nhwc';
    if (complete && parts.length > 0) return { runId, parts, shapes, layout, runtime: m.model.runtime ?? 'unknown' };
  }
  return null;
}

/** A manifest's committed shards (index and part file), from the manifest or the Arrow file beside it. */
async function manifestShards(m: RunManifest, sink: Sink, shardsKey: string): Promise<Array<{ index: number; file: string | null }>> {
  if (!m.shardsFile) return m.shards;
  const bytes = await sink.get(shardsKey);
  if (!bytes) return [];
  const t = tableFromIPC(bytes);
  const index = t.getChild('index');
  const file = t.getChild('file');
  const out: Array<{ index: number; file: string | null }> = [];
  for (let r = 0; r < t.numRows; r++) out.push({ index: Number(index?.get(r)), file: (file?.get(r) as string | null) ?? null });
  return out;
}

/** Where a content hash's vectors are in the base run: `rows` rows from `row` (a chunked document's chunks, else 1). */
interface Location {
  part: number;
  row: number;
  rows: number;
}

interface LoadedBase {
  runId: string;
  byHash: Map<string, Location>;
  parts: BaseRun['parts'];
  tables: Map<number, Promise<Table>>;
}

async function loadBase(base: BaseRun, sink: Sink): Promise<LoadedBase> {
  const byHash = new Map<string, Location>();
  for (let p = 0; p < base.parts.length; p++) {
    const bytes = await sink.get(base.parts[p]!.index);
    if (!bytes) throw new Error(`base run ${base.runId}: row index ${base.parts[p]!.index} is missing`);
    const t = await readPartFile(bytes, { name: base.parts[p]!.index });
    const hashes = t.getChild('content_hash');
    if (!hashes) throw new Error(`base run ${base.runId}: ${base.parts[p]!.index} has no content_hash column`);
    // a chunked document's rows follow each other, the first one chunk 0
    const chunks = t.getChild('chunk');
    let last: Location | null = null;
    for (let r = 0; r < t.numRows; r++) {
      const hash = String(hashes.get(r));
      if (last && chunks && Number(chunks.get(r)) > 0) {
        last.rows++;
        continue;
      }
      last = { part: p, row: r, rows: 1 };
      byHash.set(hash, last);
    }
  }
  return { runId: base.runId, byHash, parts: base.parts, tables: new Map() };
}

/**
 * What shard processing keeps from one shard to the next: the content hasher, and the row index
 * of the base run incremental shards look their rows up in (with a few of its part files). Shards
 * of one run share that base; a shard of another run replaces it, so one base is held at a time.
 * The worker that processes the shards owns it and closes it with itself.
 */
export class IncrementalCache {
  private hasher: Promise<ContentHasher> | null = null;
  private base: { runId: string; loaded: Promise<LoadedBase> } | null = null;

  /** The content hash function (see {@link contentHasher}), made once. */
  contentHasher(): Promise<ContentHasher> {
    this.hasher ??= contentHasher();
    return this.hasher;
  }

  /** A lookup of rows in `base`, whose row index is read on first use and kept until another base is asked for. */
  async lookup(base: BaseRun, sink: Sink): Promise<BaseLookup> {
    let entry = this.base;
    if (entry?.runId !== base.runId) {
      const loading = { runId: base.runId, loaded: loadBase(base, sink) };
      // a failed read is not kept: the next shard (or attempt) reads the index again
      loading.loaded.catch(() => {
        if (this.base === loading) this.base = null;
      });
      this.base = entry = loading;
    }
    return new BaseLookup(await entry.loaded, sink);
  }

  /** Drops the base run held. */
  close(): void {
    this.base = null;
    this.hasher = null;
  }
}

/** Looks up rows in a base run and reads their vectors. */
export class BaseLookup {
  constructor(
    private readonly base: LoadedBase,
    private readonly sink: Sink,
  ) {}

  has(hash: string): boolean {
    return this.base.byHash.has(hash);
  }

  /** How many rows the base run wrote for `hash`: a chunked document's chunks, else 1. */
  rowsOf(hash: string): number {
    return this.base.byHash.get(hash)?.rows ?? 0;
  }

  private table(part: number): Promise<Table> {
    let t = this.base.tables.get(part);
    if (!t) {
      const key = this.base.parts[part]!.part;
      t = this.sink.get(key).then((b) => {
        if (!b) throw new Error(`base run ${this.base.runId}: part file ${key} is missing`);
        return readPartFile(b, { name: key });
      });
      // keep a handful of part files in memory: shards read them in order
      if (this.base.tables.size >= 4) this.base.tables.delete(this.base.tables.keys().next().value as number);
      this.base.tables.set(part, t);
    }
    return t;
  }

  /** The features of `hash` (its row `k`, for a chunked document) for every tap column, copied out of the base run's part file. */
  async vectors(hash: string, columns: string[], k = 0): Promise<Record<string, CarriedFeatures>> {
    const found = this.base.byHash.get(hash);
    if (!found) throw new Error(`content hash ${hash} is not in base run ${this.base.runId}`);
    if (k >= found.rows) throw new Error(`content hash ${hash} has ${found.rows} row(s) in base run ${this.base.runId}, not ${k + 1}`);
    const loc = { part: found.part, row: found.row + k };
    const t = await this.table(loc.part);
    const out: Record<string, CarriedFeatures> = {};
    for (const c of columns) {
      const col = t.getChild(c);
      if (!col) throw new Error(`base run ${this.base.runId} has no column '${c}'`);
      const v = col.get(loc.row) as Vector | null;
      if (!v) throw new Error(`base run ${this.base.runId}: row ${loc.row} of column '${c}' is null`);
      out[c] = DataType.isList(col.type) ? { data: itemValues(v, `base run ${this.base.runId}, column '${c}'`), items: v.length } : { data: values(v).slice() };
    }
    return out;
  }
}

/** One row's features in a tap column, as the base run wrote them. */
export interface CarriedFeatures {
  /** float32 values, or float16 bits */
  data: Float32Array | Uint16Array;
  /** ragged (token) columns only: how many items (tokens) `data` holds, one after another */
  items?: number;
}

/** A vector's values: its Float32Array, or the bits of its Float16 values. */
function values(v: Pick<Vector, 'toArray'>): Float32Array | Uint16Array {
  const a: unknown = v.toArray();
  if (!(a instanceof Float32Array) && !(a instanceof Uint16Array)) throw new Error(`expected float32 or float16 values, got ${String(a)}`);
  return a;
}

/** The values of a ragged row's items (a vector of FixedSizeList), one item after another, copied. */
function itemValues(row: Vector, what: string): Float32Array | Uint16Array {
  const parts = row.data.map((items) => {
    const child = items.children[0];
    if (!child || !DataType.isFixedSizeList(items.type)) throw new Error(`${what}: the items are ${String(items.type)}, not FixedSizeList`);
    const flat = values(makeVector(child));
    // the items' Data is sliced to the row, and its values with it
    if (flat.length !== items.length * items.type.listSize)
      throw new Error(`${what}: ${items.length} items hold ${flat.length} values, not ${items.length} x ${items.type.listSize}`);
    return flat;
  });
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = parts[0] instanceof Uint16Array ? new Uint16Array(total) : new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
