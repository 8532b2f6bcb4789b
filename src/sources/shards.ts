import type { ShardSpec } from './types.js';

/** Fails unless `shardSize` is a positive integer. */
export function checkShardSize(shardSize: number): void {
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new Error(`shardSize must be a positive integer, got ${shardSize}`);
}

/** Shards of at most `shardSize` consecutive rows out of `total`, as row ranges: ids follow from positions. */
export function* planRows(total: number, shardSize: number): Generator<ShardSpec> {
  checkShardSize(shardSize);
  for (let start = 0, index = 0; start < total; start += shardSize, index++) {
    yield { index, start, count: Math.min(shardSize, total - start) };
  }
}

/** Shards of at most `shardSize` consecutive `ids` (paths, keys), each carrying its own, since a reader cannot derive them. */
export function* planIds(ids: readonly string[], shardSize: number): Generator<ShardSpec> {
  for (const shard of planRows(ids.length, shardSize)) yield { ...shard, ids: ids.slice(shard.start, shard.start + shard.count) };
}

/** Shards of at most `shardSize` consecutive ids from a stream of ids; holds one shard's ids at a time. */
export async function* planIdStream(ids: AsyncIterable<string>, shardSize: number): AsyncGenerator<ShardSpec> {
  checkShardSize(shardSize);
  let batch: string[] = [];
  let index = 0;
  let start = 0;
  for await (const id of ids) {
    batch.push(id);
    if (batch.length === shardSize) {
      yield { index: index++, start, count: batch.length, ids: batch };
      start += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0) yield { index, start, count: batch.length, ids: batch };
}

/** How many ids a stream yields (a walk of the folders, a listing of the keys), none of them kept. */
export async function countIds(ids: AsyncIterable<string>): Promise<number> {
  let n = 0;
  for await (const _id of ids) n++;
  return n;
}

/**
 * The rows of a shard's `ids`, read with up to `readAhead` reads in flight, so that slow disks,
 * network mounts and object stores overlap, and yielded in the ids' order.
 */
export async function* readAhead<T>(ids: readonly string[], readAhead: number, readOne: (id: string) => Promise<T>): AsyncGenerator<T> {
  const inflight: Array<Promise<T>> = [];
  let next = 0;
  while (next < ids.length || inflight.length > 0) {
    while (next < ids.length && inflight.length < readAhead) inflight.push(readOne(ids[next++]!));
    yield await inflight.shift()!;
  }
}

/** Checks that a shard lies within a dataset of `total` rows. */
export function checkShard(shard: ShardSpec, total: number, uri: string): void {
  const { start, count } = shard;
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > total) {
    throw new Error(`shard ${shard.index} asks for rows ${start}..${start + count - 1} but ${uri} has ${total} rows`);
  }
}
