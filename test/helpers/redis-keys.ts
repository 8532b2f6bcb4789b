import type { Redis } from 'ioredis';

/** Every key matching `pattern` (SCAN, so the server is never blocked). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
}

/**
 * What an ended run left in Redis against the lifecycle's promise: its own keys all expire, it
 * holds no dedup claim, no lease set lists it, and queues of its own (a `layertap run`) are gone.
 * Returns one line per breach; [] when the promise holds. BullMQ's job hashes in the shared
 * queues are kept by count and age (queue/shard-jobs.ts), not per run, and are not looked at.
 */
export async function endedRunLeftovers(redis: Redis, prefix: string, runId: string): Promise<string[]> {
  const out: string[] = [];
  for (const k of await scanKeys(redis, `${prefix}:layertap:*${runId}*`)) {
    const ttl = await redis.ttl(k);
    if (ttl < 0) out.push(`${k} has no expiry`);
  }
  for (const k of await scanKeys(redis, `${prefix}:layertap:active:*`)) {
    if ((await redis.get(k)) === runId) out.push(`${k} (dedup claim) still names the run`);
  }
  for (const set of ['planning', 'owned']) {
    if ((await redis.sismember(`${prefix}:layertap:${set}`, runId)) === 1) out.push(`${prefix}:layertap:${set} still lists the run`);
  }
  for (const q of ['runs', 'shards']) {
    const left = await scanKeys(redis, `${prefix}:${q}.${runId}*`);
    if (left.length > 0) out.push(`queue ${q}.${runId} still has ${left.length} key(s): ${left.slice(0, 3).join(', ')}`);
  }
  return out;
}
