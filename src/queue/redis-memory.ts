import type { Redis } from 'ioredis';
import { JobConfigError } from '../config/errors.js';

/** Redis refused a write because it reached `maxmemory` (with `noeviction`, as layertap asks for). */
export class RedisFullError extends Error {
  override readonly name = 'RedisFullError';
  constructor(
    /** bytes in use (INFO memory `used_memory`), null when Redis would not say */
    readonly usedBytes: number | null,
    /** the `maxmemory` limit in bytes, null when Redis would not say */
    readonly maxBytes: number | null,
    options?: { cause?: unknown },
  ) {
    super(
      `Redis is out of memory (${usedBytes === null ? '?' : mb(usedBytes)} used of maxmemory ${maxBytes === null ? '?' : mb(maxBytes)}); ` +
        'free some (finished runs expire on their own) or raise maxmemory',
      options,
    );
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * True for a reply by which Redis refused a command for want of memory: its error code (the
 * reply's first word, the part of a RESP error meant for programs) is OOM, or a transaction was
 * discarded (EXECABORT) because a command in it was.
 */
export function isOutOfMemory(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = err.message.split(' ', 1)[0];
  if (code === 'OOM') return true;
  const previous = (err as { previousErrors?: unknown[] }).previousErrors;
  return code === 'EXECABORT' && Array.isArray(previous) && previous.some((e) => isOutOfMemory(e));
}

/** Redis's memory in use and its limit (0: none), from INFO memory, which it answers even when full. */
export async function redisMemory(redis: Redis): Promise<{ usedBytes: number; maxBytes: number }> {
  const info = await redis.info('memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { usedBytes: field('used_memory'), maxBytes: field('maxmemory') };
}

/** `err` as a {@link RedisFullError} with Redis's figures when it is an out-of-memory refusal, else `err`. */
export async function explainOutOfMemory(redis: Redis, err: unknown): Promise<unknown> {
  if (!isOutOfMemory(err)) return err;
  const m = await redisMemory(redis).catch(() => null);
  return new RedisFullError(m?.usedBytes ?? null, m?.maxBytes ?? null, { cause: err });
}

/**
 * Refuses a run that would not fit in Redis's free memory (when `maxmemory` is set), before
 * anything of it is written: a job error naming the figures, so that `enqueue` and `run` exit 2.
 */
export async function checkRedisRoom(redis: Redis, need: { shards: number; bytes: number }): Promise<void> {
  const { usedBytes, maxBytes } = await redisMemory(redis);
  if (maxBytes === 0) return;
  const free = Math.max(0, maxBytes - usedBytes);
  // a margin: the figures per shard are measured, and others write to the same Redis
  if (need.bytes > free * 0.9) {
    throw new JobConfigError(
      `shardSize: the run needs about ${mb(need.bytes)} of Redis (${need.shards} shards), but Redis has ${mb(free)} free ` +
        `(${mb(usedBytes)} used of maxmemory ${mb(maxBytes)}); raise shardSize (fewer, larger shards) or Redis's maxmemory`,
      ['shardSize'],
    );
  }
}

/**
 * Redis lost a run's state while it was being enqueued (its record or range list is gone): it
 * restarted without persistence. Nothing of the run is queued.
 */
export class RedisLostPlanError extends Error {
  override readonly name = 'RedisLostPlanError';
  constructor(readonly runId: string) {
    super(
      `Redis lost the plan of run ${runId} while it was enqueued (it restarted without persistence?): nothing was queued; ` +
        'enqueue the job again, and run Redis with appendonly yes so that a restart keeps what it acknowledged',
    );
  }
}
