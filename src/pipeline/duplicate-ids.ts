import { tableFromIPC } from 'apache-arrow';
import { createXXHash64, type IHasher } from 'hash-wasm';
import { rowIndexKey } from '../storage/layout.js';
import type { Sink } from '../storage/types.js';

/**
 * Ids that more than one row carries. Nothing downstream relies on ids being unique, but a
 * reader that joins on them does: duplicates are counted and reported, never dropped.
 */
export interface DuplicateIds {
  /** rows whose id an earlier row already has (rows minus distinct ids) */
  count: number;
  /** a few of those ids, in the order their second row comes */
  examples: string[];
}

/** How many example ids a count keeps. */
export const DUPLICATE_ID_EXAMPLES = 5;

/**
 * The largest run whose ids are counted across shards: one 64-bit hash per row is held and
 * sorted, so 16Mi rows take 128 MiB for the count. Larger runs are not counted (null).
 */
export const DUPLICATE_ID_ROWS = 16 * 1024 * 1024;

/** The most row index files read for a count (one request each on S3): runs of more shards are not counted. */
export const DUPLICATE_ID_SHARDS = 20_000;

/** Counts duplicate ids exactly among rows added in order (one shard's rows: a set of its ids). */
export class DuplicateIdCounter {
  private readonly seen = new Set<string>();
  private readonly examples = new Set<string>();
  private count = 0;

  add(ids: readonly string[]): void {
    for (const id of ids) {
      if (!this.seen.has(id)) {
        this.seen.add(id);
        continue;
      }
      this.count++;
      if (this.examples.size < DUPLICATE_ID_EXAMPLES) this.examples.add(id);
    }
  }

  /** What was counted; null when no id came twice. */
  result(): DuplicateIds | null {
    return this.count === 0 ? null : { count: this.count, examples: [...this.examples] };
  }
}

/** The one-line warning for a run whose ids repeat: how many rows, and a few of the ids. */
export function duplicateIdsWarning(d: DuplicateIds): string {
  const examples = d.examples.length > 0 ? `, e.g. ${d.examples.map((id) => JSON.stringify(id)).join(', ')}` : '';
  return `duplicate ids: ${d.count} row(s) carry an id that an earlier row already has${examples}`;
}

/** Options of {@link countDuplicateIds}. */
export interface CountDuplicateIdsOptions {
  /** runs of more rows are not counted. @defaultValue {@link DUPLICATE_ID_ROWS} */
  maxRows?: number;
  /** runs of more shards with rows are not counted. @defaultValue {@link DUPLICATE_ID_SHARDS} */
  maxShards?: number;
  /** row index files read at once. @defaultValue 8 */
  concurrency?: number;
}

/**
 * Counts the ids that more than one row of a run carries, across its shards, from the row index
 * files (`_index/hashes-*.arrow`: the id of each part row). Each id is hashed to 64 bits and the
 * hashes are sorted, so memory is 8 bytes a row whatever the ids; two different ids share a hash
 * with a probability of about rows² / 2^65 (1 in 100,000 at 16Mi rows). The examples are checked
 * against the ids themselves. Returns null, "not counted", for a run of more than `maxRows` rows
 * or `maxShards` shards, or when a shard's index does not hold the rows its result says.
 */
export async function countDuplicateIds(
  sink: Sink,
  /** the run's folder in the sink */
  prefix: string,
  /** the committed shards and their rows */
  shards: ReadonlyArray<{ index: number; rows: number }>,
  opts: CountDuplicateIdsOptions = {},
): Promise<DuplicateIds | null> {
  const parts = shards.filter((s) => s.rows > 0).sort((a, b) => a.index - b.index);
  const total = parts.reduce((a, s) => a + s.rows, 0);
  if (total > (opts.maxRows ?? DUPLICATE_ID_ROWS) || parts.length > (opts.maxShards ?? DUPLICATE_ID_SHARDS)) return null;
  if (total === 0) return { count: 0, examples: [] };
  const hasher = await createXXHash64();
  const hashes = new BigUint64Array(total);
  const bytes = new Uint8Array(hashes.buffer);
  const starts: number[] = [];
  parts.reduce((at, s) => (starts.push(at), at + s.rows), 0);
  let complete = true;
  await eachConcurrently(parts, opts.concurrency ?? 8, async (shard, k) => {
    if (!complete) return;
    const ids = await readIds(sink, prefix, shard.index);
    if (ids === null || ids.length !== shard.rows) {
      complete = false;
      return;
    }
    let at = starts[k]! * 8;
    for (const id of ids) {
      bytes.set(hash(hasher, id), at);
      at += 8;
    }
  });
  if (!complete) return null;
  hashes.sort();
  // count, and keep each hash that repeats once, at the front of the same array
  let count = 0;
  let repeated = 0;
  for (let i = 1; i < total; i++) {
    if (hashes[i] !== hashes[i - 1]) continue;
    count++;
    if (repeated === 0 || hashes[repeated - 1] !== hashes[i]) hashes[repeated++] = hashes[i]!;
  }
  if (count === 0) return { count: 0, examples: [] };
  return { count, examples: await examples(sink, prefix, parts, hasher, hashes.subarray(0, repeated)) };
}

/** The first ids, in run order, that come a second time; `repeated` is the sorted hashes that repeat. */
async function examples(sink: Sink, prefix: string, parts: ReadonlyArray<{ index: number }>, hasher: IHasher, repeated: BigUint64Array): Promise<string[]> {
  const out = new Set<string>();
  // the first id seen with each repeated hash: a later row is a duplicate when its id is the same
  const first = new Map<bigint, string>();
  const view = new DataView(new ArrayBuffer(8));
  for (const shard of parts) {
    for (const id of (await readIds(sink, prefix, shard.index)) ?? []) {
      new Uint8Array(view.buffer).set(hash(hasher, id));
      const h = view.getBigUint64(0, true);
      if (!contains(repeated, h)) continue;
      const seen = first.get(h);
      if (seen === undefined) first.set(h, id);
      else if (seen === id) {
        out.add(id);
        if (out.size === DUPLICATE_ID_EXAMPLES) return [...out];
      }
    }
  }
  return [...out];
}

/** The ids of a shard's part rows, from its row index; null when the index is missing. */
async function readIds(sink: Sink, prefix: string, shard: number): Promise<string[] | null> {
  const bytes = await sink.get(rowIndexKey(prefix, shard));
  if (bytes === null) return null;
  const column = tableFromIPC(bytes).getChild('id');
  return column === null ? null : Array.from(column as Iterable<unknown>, (v) => String(v));
}

function hash(hasher: IHasher, id: string): Uint8Array {
  hasher.init();
  hasher.update(id);
  return hasher.digest('binary');
}

function contains(sorted: BigUint64Array, h: bigint): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo] === h;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function eachConcurrently<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const k = next++;
      await fn(items[k]!, k);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
}
