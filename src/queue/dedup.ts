import type { Redis } from 'ioredis';
import type { RunRegistry } from './run-registry.js';
import type { RunRecord, RunStatus } from './types.js';

/** How long a dedup claim lives at most (a run that never ends does not block its job for longer). */
const CLAIM_TTL_S = 7 * 24 * 3600;

/** Statuses of a run that an identical enqueue joins instead of starting another. */
const ACTIVE: readonly RunStatus[] = ['queued', 'running'];

/** Options of {@link claimSnapshot}. */
export interface ClaimOptions {
  /** how often to look again at a holder that is still planning. @defaultValue 50 */
  pollMs?: number;
  /** how long to wait for a holder to leave `planning`. @defaultValue 120000 */
  waitMs?: number;
}

function claimKey(prefix: string, key: string): string {
  return `${prefix}:layertap:active:${key}`;
}

function claimRef(prefix: string, runId: string): string {
  return `${prefix}:layertap:run:${runId}:claim`;
}

/**
 * Claim `key` (the job and source snapshot) for `runId` unless a run with the same key is
 * active; then that run's record is returned instead and nothing new should be enqueued. A holder
 * still `planning` (an identical enqueue a moment earlier) is waited for: it becomes active, and
 * is returned, or ends, and the key is taken over. A holder that has ended never absorbs a new run.
 */
export async function claimSnapshot(
  redis: Redis,
  prefix: string,
  key: string,
  runId: string,
  registry: RunRegistry,
  opts: ClaimOptions = {},
): Promise<RunRecord | null> {
  const k = claimKey(prefix, key);
  const until = Date.now() + (opts.waitMs ?? 120_000);
  for (let attempt = 0; ; attempt++) {
    if ((await redis.set(k, runId, 'EX', CLAIM_TTL_S, 'NX')) === 'OK') {
      await redis.set(claimRef(prefix, runId), key, 'EX', CLAIM_TTL_S);
      return null;
    }
    const other = await redis.get(k);
    if (other === runId) return null;
    if (!other) continue;
    const rec = await registry.get(other);
    if (rec && ACTIVE.includes(rec.status)) return rec;
    if (rec && rec.status === 'planning') {
      // the holder planned the same snapshot and is about to queue it: wait for where it goes
      if (Date.now() > until) throw new Error(`run ${other}, identical to run ${runId}, is still planning; try again`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 50));
      continue;
    }
    // the other run is over (or unknown): take the key over, unless someone else just did
    const swapped = await redis.eval(
      "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end return 0",
      1,
      k,
      other,
      runId,
      String(CLAIM_TTL_S),
    );
    if (swapped === 1) {
      await redis.set(claimRef(prefix, runId), key, 'EX', CLAIM_TTL_S);
      return null;
    }
    if (attempt > 1000) throw new Error(`could not decide whether run ${runId} duplicates an active run; try again`);
  }
}

/**
 * Lets go of the run's dedup claim, if it still holds it: an ended run never absorbs a new one.
 * Plain commands, no script: a Redis that is out of memory refuses scripts but runs GET and DEL.
 */
export async function releaseSnapshot(redis: Redis, prefix: string, runId: string): Promise<void> {
  const ref = claimRef(prefix, runId);
  const key = await redis.get(ref);
  // only this run's claims name it, and it is over: no other run can take the key between these two
  if (key !== null && (await redis.get(claimKey(prefix, key))) === runId) await redis.del(claimKey(prefix, key));
  await redis.del(ref);
}
