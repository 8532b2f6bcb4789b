/**
 * Defaults of `LayertapWorkerOptions` that govern throughput and recovery, in a module of their own so that the
 * CLI can show them without loading BullMQ.
 */
export const WORKER_DEFAULTS = {
  /** shard jobs one process works at once (`worker --concurrency`, `run --workers`) */
  concurrency: 2,
  lockDurationMs: 30_000,
  /** the stalled check interval is this part of the lock duration (see {@link stalledIntervalFor}) */
  stalledFraction: 0.25,
  maxStalledCount: 5,
  graceMs: 25_000,
  /** how long shards and finalizing wait out storage that does not answer, without spending attempts */
  storageOutageMs: 600_000,
} as const;

/** The worker counts `layertap plan` estimates a run's duration for, unless given. */
export const PLAN_WORKER_COUNTS: readonly number[] = [1, 2, 4, 8, 16, 32, 64];

/**
 * How long a `layertap run` process may go without renewing the lease of the run it works alone
 * (it renews it every third of this); a run whose lease ran out is ended `failed` by the next
 * worker, `run`, `status` or `cancel` that looks.
 */
export const OWNER_TIMEOUT_MS = 30_000;

/**
 * The stalled check interval for a lock duration, unless set: a quarter of it. A dead worker's
 * shard waits for its lock to expire and for two checks after that (the first marks it, the
 * second moves it), and checks of all workers are at most 2 intervals apart, so it is back in
 * the queue within max(lock, 2 x interval) + 2 x interval: 1.5 x the lock (45 s by default). An
 * interval equal to the lock made that 4 x the lock (up to 120 s; 90 s was seen).
 */
export function stalledIntervalFor(lockDurationMs: number): number {
  return Math.max(100, Math.round(lockDurationMs * WORKER_DEFAULTS.stalledFraction));
}

/**
 * How long a shard (or a finalizer) waits before trying storage again, `waitedMs` into an outage:
 * half the time waited so far, from 1 s to 15 s, so that a short blip costs a second and the end
 * of a long outage is seen within 15 s; with a little jitter, so that the shards of a run do not all
 * knock at the same moment.
 */
export function outageBackoff(waitedMs: number): number {
  const base = Math.min(15_000, Math.max(1000, waitedMs / 2));
  return Math.round(base * (0.9 + Math.random() * 0.2));
}
