import { tableFromArrays, type Table } from 'apache-arrow';
import { createXXHash128, type IHasher } from 'hash-wasm';
import type { ResolvedJob } from '../config/resolved.js';
import type { TapOutput } from '../types/features.js';
import { readPartFile } from '../sinks/index.js';
import { MANIFEST, rowIndexKey, runOfSuccessKey, runPrefix } from '../storage/layout.js';
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
export type ContentHasher = (row: Extract<SourceRow, { kind: 'bytes' | 'tensor' }>) => string;

let hasher: Promise<IHasher> | null = null;

/**
 * The content hash function: XXH3-128 of the row's bytes, as `xxh3-128:<32 hex>`. It detects
 * changed inputs (any change gives a different hash, except with probability 2^-128); it is
 * not a cryptographic hash, which runs 2-3 times slower on 600 KB tensor rows and is not needed
 * to tell an edited file from an unchanged one.
 */
export async function contentHasher(): Promise<ContentHasher> {
  hasher ??= createXXHash128();
  const h = await hasher;
  // synchronous from here on: each call initialises, feeds and finishes the hash without yielding
  return (row) => {
    h.init();
    h.update(row.kind === 'bytes' ? row.bytes : new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength));
    return `${CONTENT_HASH_ALGORITHM}:${h.digest('hex')}`;
  };
}

/** Bytes of a row index file: the ids and content hashes of a part file's rows, in its order. */
export function encodeRowIndex(ids: string[], hashes: string[]): Table {
  return tableFromArrays({ id: ids, content_hash: hashes });
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
    for (const s of m.shards) {
      if (!s.file) continue;
      const idx = rowIndexKey(prefix, s.index);
      if (!keys.includes(idx)) {
        complete = false; // written before row indexes existed: not usable as a base
        break;
      }
      parts.push({ part: `${prefix}/${s.file.split('/').pop()!}`, index: idx });
    }
    const shapes: Record<string, number[]> = {};
    for (const t of m.taps) if (t.shape) shapes[t.as] = t.shape;
    const layout = m.taps.find((t) => t.layout)?.layout ?? 'nhwc';
    if (complete && parts.length > 0) return { runId, parts, shapes, layout, runtime: m.model.runtime ?? 'unknown' };
  }
  return null;
}

/** Where a content hash's vectors are in the base run. */
interface Location {
  part: number;
  row: number;
}

interface LoadedBase {
  runId: string;
  byHash: Map<string, Location>;
  parts: BaseRun['parts'];
  tables: Map<number, Promise<Table>>;
}

// one base per process at a time: shards of one run share it, and it is dropped when the next run comes
let cached: LoadedBase | null = null;

async function loadBase(base: BaseRun, sink: Sink): Promise<LoadedBase> {
  if (cached?.runId === base.runId) return cached;
  const byHash = new Map<string, Location>();
  for (let p = 0; p < base.parts.length; p++) {
    const bytes = await sink.get(base.parts[p]!.index);
    if (!bytes) throw new Error(`base run ${base.runId}: row index ${base.parts[p]!.index} is missing`);
    const t = await readPartFile(bytes);
    const hashes = t.getChild('content_hash');
    if (!hashes) throw new Error(`base run ${base.runId}: ${base.parts[p]!.index} has no content_hash column`);
    for (let r = 0; r < t.numRows; r++) byHash.set(String(hashes.get(r)), { part: p, row: r });
  }
  cached = { runId: base.runId, byHash, parts: base.parts, tables: new Map() };
  return cached;
}

/** Looks up rows in a base run and reads their vectors. */
export class BaseLookup {
  private constructor(
    private readonly base: LoadedBase,
    private readonly sink: Sink,
  ) {}

  static async open(base: BaseRun, sink: Sink): Promise<BaseLookup> {
    return new BaseLookup(await loadBase(base, sink), sink);
  }

  has(hash: string): boolean {
    return this.base.byHash.has(hash);
  }

  private table(part: number): Promise<Table> {
    let t = this.base.tables.get(part);
    if (!t) {
      const key = this.base.parts[part]!.part;
      t = this.sink.get(key).then((b) => {
        if (!b) throw new Error(`base run ${this.base.runId}: part file ${key} is missing`);
        return readPartFile(b);
      });
      // keep a handful of part files in memory: shards read them in order
      if (this.base.tables.size >= 4) this.base.tables.delete(this.base.tables.keys().next().value as number);
      this.base.tables.set(part, t);
    }
    return t;
  }

  /** The vectors of `hash` for every tap column, copied out of the base run's part file. */
  async vectors(hash: string, columns: string[]): Promise<Record<string, Float32Array | Uint16Array>> {
    const loc = this.base.byHash.get(hash);
    if (!loc) throw new Error(`content hash ${hash} is not in base run ${this.base.runId}`);
    const t = await this.table(loc.part);
    const out: Record<string, Float32Array | Uint16Array> = {};
    for (const c of columns) {
      const col = t.getChild(c);
      if (!col) throw new Error(`base run ${this.base.runId} has no column '${c}'`);
      const v = col.get(loc.row) as { toArray(): Float32Array | Uint16Array } | null;
      if (!v) throw new Error(`base run ${this.base.runId}: row ${loc.row} of column '${c}' is null`);
      out[c] = v.toArray().slice();
    }
    return out;
  }
}

/** Rows of features from two sources (computed and carried) merged back into source order. */
export function mergeRows(
  columns: string[],
  a: { pos: number[]; ids: string[]; taps: Record<string, TapOutput> },
  b: { pos: number[]; ids: string[]; rows: Array<Record<string, Float32Array | Uint16Array>> },
  shapes: Record<string, number[]>,
): { ids: string[]; taps: Record<string, TapOutput> } {
  const n = a.pos.length + b.pos.length;
  const ids: string[] = new Array<string>(n);
  const taps: Record<string, TapOutput> = {};
  for (const c of columns) {
    const shape = shapes[c] ?? a.taps[c]?.shape;
    if (!shape) throw new Error(`no shape known for column '${c}'`);
    const per = shape.reduce((x, y) => x * y, 1);
    const sample = a.taps[c]?.data ?? b.rows[0]?.[c];
    const data = sample instanceof Uint16Array ? new Uint16Array(n * per) : new Float32Array(n * per);
    taps[c] = { data, shape };
  }
  let i = 0;
  let j = 0;
  for (let k = 0; k < n; k++) {
    const takeA = j >= b.pos.length || (i < a.pos.length && a.pos[i]! < b.pos[j]!);
    if (takeA) {
      ids[k] = a.ids[i]!;
      for (const c of columns) {
        const per = taps[c]!.data.length / n;
        taps[c]!.data.set(a.taps[c]!.data.subarray(i * per, (i + 1) * per) as never, k * per);
      }
      i++;
    } else {
      ids[k] = b.ids[j]!;
      for (const c of columns) {
        const per = taps[c]!.data.length / n;
        const v = b.rows[j]![c]!;
        if (v.length !== per) throw new Error(`carried vector of '${c}' has ${v.length} values, expected ${per}`);
        taps[c]!.data.set(v as never, k * per);
      }
      j++;
    }
  }
  return { ids, taps };
}
