import type { Redis } from 'ioredis';
import type { RunRegistry } from './run-registry.js';
import type { RunRecord } from './types.js';

/**
 * Claim `key` for `runId` unless a run with the same key is still queued or running; then that
 * run's record is returned instead and nothing new should be enqueued.
 */
export async function claimSnapshot(redis: Redis, prefix: string, key: string, runId: string, registry: RunRegistry): Promise<RunRecord | null> {
  const k = `${prefix}:layertap:active:${key}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if ((await redis.set(k, runId, 'EX', 7 * 24 * 3600, 'NX')) === 'OK') return null;
    const other = await redis.get(k);
    if (!other) continue;
    const rec = await registry.get(other);
    if (rec && (rec.status === 'queued' || rec.status === 'running')) return rec;
    // the other run is over (or unknown): take the key over, unless someone else just did
    const swapped = await redis.eval(
      "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end return 0",
      1,
      k,
      other,
      runId,
      String(7 * 24 * 3600),
    );
    if (swapped === 1) return null;
  }
  throw new Error(`could not decide whether run ${runId} duplicates an active run; try again`);
}
