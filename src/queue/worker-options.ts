import { DEFAULTS } from '../config/defaults.js';
import type { Registries } from '../pipeline/registries.js';
import type { Logger } from '../types/logger.js';
import type { EmbedPool } from '../workers/pool.js';
import type { QueueSettings } from './connection.js';
import type { ShardResult } from './types.js';

// The options of a LayertapWorker and their defaults, in a module of their own (as BullMQ's
// worker-options.ts) that imports only types: the CLI shows the defaults without loading BullMQ.
// How the recovery options play together: docs/reliability.md; operating workers: docs/operations.md.

/** The defaults of {@link LayertapWorkerOptions} (the `worker` entry of the defaults table, config/defaults.ts). */
export const WORKER_DEFAULTS = DEFAULTS.worker;

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

/** The shard a batch belongs to, as the batch hooks are told. */
export interface BatchOrigin {
  runId: string;
  /** the job's dataset name */
  name: string;
  shard: number;
  /** tap column names */
  taps: string[];
}

/** One batch as a pool thread ran it. */
export interface ForwardStats {
  /** rows sent to the model thread */
  rows: number;
  backend: string;
  decodeMs: number;
  forwardMs: number;
  /** from submission to result, including the wait for a free thread */
  totalMs: number;
}

/** Options of a `LayertapWorker` (queue/worker.ts). */
export interface LayertapWorkerOptions {
  settings: QueueSettings;
  /** shard jobs processed at once by this process. @defaultValue {@link WORKER_DEFAULTS}.concurrency (2) */
  concurrency?: number;
  /** pool threads. @defaultValue the number of cores (1 with tfjs-node) */
  threads?: number;
  /**
   * where log records go, each bound to this worker (`worker`) and, for shard work, to `runId`
   * and `shard`. @defaultValue `log` when given, else one text line per record on stderr
   */
  logger?: Logger;
  /** the records as plain text lines (their messages), when no `logger` is given */
  log?: (line: string) => void;
  /** called after each batch (rows embedded, error rows) */
  onBatch?: (runId: string, rows: number, errorRows: number) => void;
  /** called after each batch a pool thread ran (metrics: latency, backend) */
  onForward?: (origin: BatchOrigin, stats: ForwardStats) => void;
  /** called when a shard's files are committed */
  onShard?: (origin: BatchOrigin, result: ShardResult) => void;
  /** called when this worker has finalized a run (its record says how it ended) */
  onRun?: (runId: string) => void;
  /**
   * a model thread pool to use for jobs of its thread count, e.g. one already loading a job's
   * model; the worker closes it with its own pools. @defaultValue pools are made for the first job of each thread count
   */
  pool?: EmbedPool;
  /**
   * how long a job's lock lives without renewal (renewed every quarter to half of it while the
   * job runs). A shard whose worker died goes back to the queue once its lock has expired and two
   * stalled checks have seen it: at most max(lock, 2 x stalled interval) + 2 x stalled interval
   * after the death (45 s with the defaults; docs/reliability.md). @defaultValue {@link WORKER_DEFAULTS}.lockDurationMs (30000)
   */
  lockDurationMs?: number;
  /**
   * how often this worker looks for jobs whose lock expired (all workers of a deployment share
   * one check per interval). @defaultValue {@link stalledIntervalFor}(lockDurationMs): a quarter of it
   */
  stalledIntervalMs?: number;
  /**
   * times one shard may be recovered from a dead or frozen worker before it counts as failed
   * (guards against a shard that kills every process that takes it). @defaultValue {@link WORKER_DEFAULTS}.maxStalledCount (5)
   */
  maxStalledCount?: number;
  /**
   * on close(), how long active shards may run on; those still running then are stopped and
   * handed back to the queue (another worker takes them at once, no lock wait). @defaultValue {@link WORKER_DEFAULTS}.graceMs (25000)
   */
  graceMs?: number;
  /** longest one batch may take before its thread is stopped and the shard attempt fails; 0: no limit. @defaultValue DEFAULTS.pool.batchTimeoutMs (300000) */
  batchTimeoutMs?: number;
  /**
   * how long shards and finalizing wait for storage that does not answer (S3 down or unreachable,
   * throttling, server errors), retrying with a growing backoff without spending attempts, before
   * such failures count as failed attempts. @defaultValue {@link WORKER_DEFAULTS}.storageOutageMs (600000: 10 minutes)
   */
  storageOutageMs?: number;
  /** text jobs: sort rows by length within windows of a few batches, so that batches pad little (false only to measure what it buys). @defaultValue {@link WORKER_DEFAULTS}.groupByLength (true) */
  groupByLength?: boolean;
  /**
   * how often this worker looks for runs whose enqueuer died while planning (and marks them
   * failed). @defaultValue {@link WORKER_DEFAULTS}.planningSweepMs (30000)
   */
  planningSweepMs?: number;
  /** module the pool threads run. @defaultValue layertap's own thread entry */
  threadEntry?: string;
  /** recorded as processedBy on each job it takes. @defaultValue '<hostname>:<pid>' */
  name?: string;
  /**
   * where a job's source kind, sink scheme, part format and model runtime are found (pool
   * threads import the runtime's module). @defaultValue the built-ins
   */
  registries?: Registries;
  /**
   * work only the run enqueued with this owner (`EnqueueOptions.owner`), in its own queues: no
   * other run's shards, no schedule ticks, no sweeps (what `layertap run` does).
   * @defaultValue the deployment's shared queues, schedules and sweeps
   */
  owner?: string;
}

function checkInteger(name: string, v: number | undefined, min: number, what = `an integer of at least ${min}`): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new Error(`options.${name} must be ${what}, got ${v}`);
}

/** Fails with a message naming the option when one is out of its range, before a worker starts anything. */
export function checkWorkerOptions(opts: LayertapWorkerOptions): void {
  checkInteger('concurrency', opts.concurrency, 1, 'a positive integer');
  checkInteger('threads', opts.threads, 1, 'a positive integer');
  checkInteger('lockDurationMs', opts.lockDurationMs, 100);
  checkInteger('stalledIntervalMs', opts.stalledIntervalMs, 100);
  checkInteger('maxStalledCount', opts.maxStalledCount, 0);
  checkInteger('graceMs', opts.graceMs, 0);
  checkInteger('batchTimeoutMs', opts.batchTimeoutMs, 0);
  checkInteger('storageOutageMs', opts.storageOutageMs, 0);
  checkInteger('planningSweepMs', opts.planningSweepMs, 100);
}
