/**
 * Defaults of `LayertapWorkerOptions` that govern recovery, in a module of their own so that the
 * CLI can show them without loading BullMQ.
 */
export const WORKER_DEFAULTS = {
  lockDurationMs: 30_000,
  maxStalledCount: 5,
  graceMs: 25_000,
} as const;
