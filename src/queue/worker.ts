import { hostname } from 'node:os';
import { DelayedError, UnrecoverableError, WaitingError, Worker, type Job, type Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { bullConnection, redisOptions } from './connection.js';
import { checkRedis } from './redis-checks.js';
import { checkWorkerOptions, stalledIntervalFor, WORKER_DEFAULTS, type BatchOrigin, type ForwardStats, type LayertapWorkerOptions } from './worker-options.js';
import { WorkerPools } from './worker-pools.js';
import { ScheduleWorker } from './schedules.js';
import { RunRegistry } from './run-registry.js';
import { finalizeRun } from '../pipeline/finalize.js';
import { duplicateIdsWarning } from '../pipeline/duplicate-ids.js';
import { defaultRegistries, type Registries } from '../pipeline/registries.js';
import { IncrementalCache } from '../pipeline/incremental.js';
import { checkedJobData, InvalidJobDataError, parseRunJobData, parseShardTask, withKnownNames } from './schemas.js';
import { RunSpecStore } from './run-specs.js';
import { addShardJob } from './shard-jobs.js';
import { failAbandonedPlans, finalizeUnfinalized, shardOutcomes } from './sweep.js';
import { RunLifecycle } from './lifecycle.js';
import { QueueSet } from './queues.js';
import { IdPlanReader } from '../pipeline/plan-files.js';
import { createSink } from '../storage/registry.js';
import { runPrefix } from '../storage/layout.js';
import type { ShardSpec } from '../sources/types.js';
import { processShard } from '../pipeline/shard-processor.js';
import { isPermanent, isStorageOutage } from '../types/errors.js';
import { callbackLogger, repeatLimitedLogger, type Logger } from '../types/logger.js';
import { parseShardJobId, runQueues, shardJobId, type RunJobData, type RunSpec, type ShardJobData, type ShardResult, type ShardTask } from './types.js';

export { WORKER_DEFAULTS, type BatchOrigin, type ForwardStats, type LayertapWorkerOptions };

/** Processes shard jobs and finalizes runs until closed. Any number may run on any hosts. */
export class LayertapWorker {
  private readonly redis: Redis;
  private readonly registry: RunRegistry;
  private shardWorker: Worker<ShardTask, ShardResult> | null = null;
  /** where the shard jobs of a run's window are added as the run goes */
  private shardQueue: Queue<ShardTask> | null = null;
  private readonly specs: RunSpecStore;
  /** the plan file read last, kept for the run's next shards */
  private plans: { runId: string; reader: IdPlanReader } | null = null;
  private sweep: NodeJS.Timeout | null = null;
  private readonly queues: QueueSet;
  private readonly lifecycle: RunLifecycle;
  /** the queues this worker takes jobs from */
  private readonly own: { runs: string; shards: string };
  private runWorker: Worker<RunJobData> | null = null;
  private scheduleWorker: ScheduleWorker | null = null;
  private readonly pools: WorkerPools;
  /** the content hasher and the base run its incremental shards share */
  private readonly incremental = new IncrementalCache();
  private readonly log: Logger;
  /** aborted when the grace period is over: active shards stop and go back to the queue */
  private readonly handBack = new AbortController();
  /** ids of shard jobs being processed here */
  private readonly active = new Set<string>();
  private closing: Promise<void> | null = null;
  private lastConnectionError = 0;
  readonly name: string;
  private readonly registries: Registries;

  constructor(private readonly opts: LayertapWorkerOptions) {
    checkWorkerOptions(opts);
    this.name = opts.name ?? `${hostname()}:${process.pid}`;
    const lines = opts.log ?? ((l: string) => void process.stderr.write(`${l}\n`));
    // a fault that repeats in a loop (a Redis that refuses every command) says so every few seconds, not in every loop
    this.log = repeatLimitedLogger((opts.logger ?? callbackLogger((msg) => lines(msg))).child({ worker: this.name }));
    this.redis = new Redis({ ...redisOptions(opts.settings.redisUrl), maxRetriesPerRequest: null });
    // ioredis reconnects by itself; without a listener a dropped connection is printed as unhandled
    this.redis.on('error', () => undefined);
    this.registry = new RunRegistry(this.redis, opts.settings.prefix);
    this.specs = new RunSpecStore(this.redis, opts.settings.prefix);
    this.lifecycle = new RunLifecycle(this.redis, opts.settings.prefix, this.registry, this.specs);
    this.queues = new QueueSet(opts.settings);
    this.own = runQueues(opts.owner);
    this.registries = opts.registries ?? defaultRegistries();
    this.pools = new WorkerPools(opts, this.registries.runtimes, this.log);
  }

  /** Shard jobs being processed by this worker right now. */
  get activeShards(): number {
    return this.active.size;
  }

  /** This worker's model thread pools (one per thread count), for metrics. */
  get poolStats(): Array<{ threads: number; utilization: number; queued: number }> {
    return this.pools.stats;
  }

  /** Job data as the job's schema says, or an UnrecoverableError naming the fields at fault (logged). */
  private checked<T>(job: Job, parse: (data: unknown) => T): T {
    try {
      return checkedJobData(job.data, parse);
    } catch (err) {
      this.log.error({ queue: job.queueName, jobId: job.id ?? null }, `layertap worker: ${job.queueName} job ${job.id ?? '?'}: ${(err as Error).message}`);
      throw err;
    }
  }

  /** A run's spec, checked like job data: an UnrecoverableError (logged) when it is missing or malformed. */
  private async specFor(job: Job, runId: string, kind: 'shard' | 'run'): Promise<RunSpec> {
    const spec = await this.specs.get(runId).catch((err: unknown) => {
      if (err instanceof InvalidJobDataError) return err;
      throw err;
    });
    return this.checked(job, () => {
      if (spec instanceof InvalidJobDataError) throw spec;
      if (spec === null) throw new InvalidJobDataError(kind, `run ${runId} has no spec in Redis (its run is unknown or long finished)`);
      return withKnownNames('run spec', spec, this.registries);
    });
  }

  /**
   * Adds the shard `window` places after this one, so that the run keeps about `window` shard
   * jobs in Redis. It is added when this shard starts (not when it ends), so the parent always
   * waits on a pending shard while the window moves, whatever becomes of this one.
   */
  private async extendWindow(spec: RunSpec, index: number): Promise<void> {
    const next = index + spec.window;
    if (next >= spec.shards || !this.shardQueue) return;
    const prefix = this.opts.settings.prefix;
    const queues = runQueues(spec.owner);
    const child = `${prefix}:${queues.shards}:${shardJobId(spec.runId, next)}`;
    const parent = `${prefix}:${queues.runs}:${spec.runId}`;
    // a shard started again (after a stall or a retry) finds its successor done and removed: not again
    const [[, processed], [, failed]] = (await this.redis.multi().hexists(`${parent}:processed`, child).hexists(`${parent}:failed`, child).exec()) as [
      [null, number],
      [null, number],
    ];
    if (processed || failed || (await this.specs.isCancelled(spec.runId))) return;
    const task = await this.specs.task(spec.runId, next);
    if (!task) throw new Error(`run ${spec.runId}: shard ${next} is not in the run's plan`);
    await addShardJob(this.shardQueue, prefix, queues.runs, spec.job, task);
  }

  /** The ids of a shard of a file source, from the run's plan files. */
  private async shardIds(spec: RunSpec, task: ShardTask): Promise<string[]> {
    if (this.plans?.runId !== spec.runId) {
      this.plans = { runId: spec.runId, reader: new IdPlanReader(await createSink(spec.job.sink, this.registries.sinks)) };
    }
    return this.plans.reader.ids(runPrefix(spec.job.name, spec.job.fingerprint, spec.runId), task, spec.job.shardSize);
  }

  private async processShardJob(job: Job<ShardTask, ShardResult>, token?: string, signal?: AbortSignal): Promise<ShardResult> {
    const task = this.checked(job, parseShardTask);
    const spec = await this.specFor(job, task.runId, 'shard');
    const { runId } = task;
    // cancelled before this shard started: it writes nothing and says so, so that the run counts it cancelled, not failed
    if (await this.specs.isCancelled(runId)) return cancelledShard(task.index);
    await this.extendWindow(spec, task.index);
    const shard: ShardSpec = { index: task.index, start: task.start, count: task.count, ...(task.offset !== undefined ? { offset: task.offset } : {}) };
    const attempt = `attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1}`;
    const log = this.log.child({ runId, shard: shard.index });
    // a start after a stall repeats the attempt number; the start count tells them apart
    log.info(
      { attempt: job.attemptsMade + 1, starts: job.attemptsStarted },
      `layertap worker: run ${runId} shard ${shard.index}: started (${attempt}, start ${job.attemptsStarted})`,
    );
    const jobKey = job.id ?? shardJobId(runId, shard.index);
    const origin: BatchOrigin = { runId, name: spec.job.name, shard: shard.index, taps: spec.job.taps.map((t) => t.as) };
    this.active.add(jobKey);
    // this attempt counts its rows from 0: a repeated batch of an earlier attempt is not counted twice
    await this.registry.shardStopped(runId, shard.index);
    let written = { rows: 0, errorRows: 0 };
    try {
      if (spec.idPlan) shard.ids = await this.shardIds(spec, task);
      const data: ShardJobData = { runId, job: spec.job, shard, ...(spec.base ? { base: spec.base } : {}) };
      const rec = await this.registry.get(runId);
      if (rec?.status === 'queued') await this.lifecycle.move(runId, 'running');
      const result = await processShard(data, {
        pool: this.pools.for(data.job.model.backend, origin),
        registries: this.registries,
        incremental: this.incremental,
        ...(this.opts.groupByLength !== undefined ? { groupByLength: this.opts.groupByLength } : {}),
        signal: signal ? AbortSignal.any([signal, this.handBack.signal]) : this.handBack.signal,
        onBatch: async (rows, errorRows) => {
          this.opts.onBatch?.(runId, rows, errorRows);
          written = { rows: written.rows + rows, errorRows: written.errorRows + errorRows };
          await this.registry.shardProgress(runId, shard.index, written.rows, written.errorRows);
        },
      });
      await this.registry.shardCommitted(runId, shard.index, result.rows, result.errorRows);
      await this.storageBack(runId, log);
      // a shard whose rows were all carried over from the base run ran no batch, so it has no backend
      const how = [result.backend, result.carried ? `${result.carried} carried over` : ''].filter((p) => p !== '').join(', ') || 'no batch';
      log.info(
        { rows: result.rows, errorRows: result.errorRows, seconds: result.seconds, backend: result.backend, carried: result.carried ?? 0 },
        `layertap worker: run ${runId} shard ${shard.index}: ${result.rows} rows, ${result.errorRows} errors, ${result.seconds.toFixed(2)} s (${how})`,
      );
      this.opts.onShard?.(origin, result);
      return result;
    } catch (err) {
      if (this.handBack.signal.aborted && token) {
        // back to the waiting list now, without using up an attempt or waiting for the lock to expire
        try {
          await job.moveToWait(token);
          log.warn({}, `layertap worker: run ${runId} shard ${shard.index}: handed back to the queue`);
          throw new WaitingError();
        } catch (e) {
          if (e instanceof WaitingError) throw e;
          log.warn(
            {},
            `layertap worker: run ${runId} shard ${shard.index}: could not hand back (${(e as Error).message}); it is recovered when its lock expires`,
          );
          throw err;
        }
      }
      await this.registry.shardStopped(runId, shard.index).catch(() => undefined);
      const message = (err as Error).message ?? String(err);
      // storage that does not answer is an outage, not a bad shard: wait for it without spending an attempt
      if (token && (await this.waitForStorage(job, token, runId, err, log))) throw new DelayedError();
      log.error({ attempt: job.attemptsMade + 1 }, `layertap worker: run ${runId} shard ${shard.index} ${attempt} failed: ${message}`);
      // damaged input, or a model that cannot load: the next attempt would meet the same fault
      if (isPermanent(err)) throw new UnrecoverableError(message);
      throw err;
    } finally {
      this.active.delete(jobKey);
    }
  }

  /**
   * When `err` says the storage does not answer (a retryable storage error: the store is down,
   * unreachable or overloaded), and the run's storage outage began less than `storageOutageMs`
   * ago: the job is moved to the delayed set, to be tried again after a backoff that grows with
   * the outage (capped), without spending an attempt. Returns true when it was; the caller then
   * throws BullMQ's DelayedError. The outage is noted once per run (log line, `status`).
   */
  private async waitForStorage(job: Job, token: string, runId: string, err: unknown, log: Logger): Promise<boolean> {
    if (!isStorageOutage(err)) return false;
    const message = (err as Error).message ?? String(err);
    const limit = this.opts.storageOutageMs ?? WORKER_DEFAULTS.storageOutageMs;
    const outage = await this.specs.noteStorageOutage(runId, message);
    const waited = Date.now() - outage.since;
    if (waited >= limit) {
      log.error(
        { since: outage.since, waitedMs: waited },
        `layertap worker: run ${runId}: storage unreachable for ${(waited / 1000).toFixed(0)} s, past storageOutageMs (${limit} ms): attempts count again`,
      );
      return false;
    }
    if (outage.first) {
      log.warn(
        { since: outage.since, error: message },
        `layertap worker: run ${runId}: storage unreachable (${message}); shards and finalizing wait for it, for up to ${(limit / 1000).toFixed(0)} s, without spending attempts`,
      );
    }
    await job.moveToDelayed(Date.now() + outageBackoff(waited), token);
    return true;
  }

  /** The run's storage answered again: its outage, if one was noted, is over (logged once). */
  private async storageBack(runId: string, log: Logger): Promise<void> {
    const since = await this.specs.clearStorageOutage(runId);
    if (since !== null)
      log.info({ downMs: Date.now() - since }, `layertap worker: run ${runId}: storage answers again after ${((Date.now() - since) / 1000).toFixed(1)} s`);
  }

  /** Check Redis (answers, credentials, eviction policy), connect and start taking jobs. */
  async start(): Promise<void> {
    const settings = this.opts.settings;
    const check = await checkRedis(settings.redisUrl, { allowEviction: settings.allowEviction });
    for (const w of check.warnings) this.log.warn({}, `layertap worker: warning: ${w}`);
    const connection = bullConnection(settings.redisUrl);
    const prefix = settings.prefix;
    const lockDuration = this.opts.lockDurationMs ?? WORKER_DEFAULTS.lockDurationMs;
    const recovery = {
      lockDuration,
      stalledInterval: this.opts.stalledIntervalMs ?? stalledIntervalFor(lockDuration),
      maxStalledCount: this.opts.maxStalledCount ?? WORKER_DEFAULTS.maxStalledCount,
      name: this.name,
    };
    this.shardQueue = this.queues.get<ShardTask>(this.own.shards);
    this.shardQueue.on('error', (err) => this.logError(err));
    this.shardWorker = new Worker<ShardTask, ShardResult>(this.own.shards, (job, token, signal) => this.processShardJob(job, token, signal), {
      connection,
      prefix,
      concurrency: this.opts.concurrency ?? WORKER_DEFAULTS.concurrency,
      ...recovery,
    });
    this.runWorker = new Worker<RunJobData>(this.own.runs, (job, token) => this.finalizeJob(job, token), { connection, prefix, concurrency: 1, ...recovery });
    for (const w of [this.shardWorker, this.runWorker]) w.on('error', (err) => this.logError(err));
    this.shardWorker.on('stalled', (jobId) =>
      this.log.warn(
        { jobId, ...parseShardJobId(jobId) },
        `layertap worker: shard job ${jobId} stalled (its worker stopped renewing the lock); back in the queue`,
      ),
    );
    if (this.opts.owner) {
      // a run worked alone: its own queues only, no schedule ticks and no sweeps of other runs
      await Promise.all([this.shardWorker.waitUntilReady(), this.runWorker.waitUntilReady()]);
      return;
    }
    // schedule ticks: each becomes one run (see schedules.ts)
    // its connection errors share the shard worker's rate limit: one line per 5 s while Redis is away
    this.scheduleWorker = new ScheduleWorker(this.opts.settings, this.log, (err) => this.logError(err));
    await Promise.all([this.shardWorker.waitUntilReady(), this.runWorker.waitUntilReady(), this.scheduleWorker.waitUntilReady()]);
    const sweep = async () => {
      try {
        for (const runId of await failAbandonedPlans(this.lifecycle, this.queues, this.registries.sinks)) {
          const rec = await this.registry.get(runId);
          this.log.warn(
            { runId, status: rec?.status ?? null },
            `layertap worker: run ${runId} ${rec?.status ?? 'ended'}: ${rec?.error ?? 'its process stopped'}`,
          );
        }
        for (const runId of await finalizeUnfinalized(this.lifecycle, this.queues, this.registries.sinks)) {
          const rec = await this.registry.get(runId);
          this.log.info({ runId, status: rec?.status ?? null }, `layertap worker: run ${runId} finalized now that its storage answers: ${rec?.status ?? '?'}`);
        }
      } catch (err) {
        this.logError(err as Error);
      }
    };
    void sweep();
    this.sweep = setInterval(() => void sweep(), this.opts.planningSweepMs ?? WORKER_DEFAULTS.planningSweepMs);
    this.sweep.unref();
  }

  /**
   * The run (parent) job: once every shard job has finished, write the manifest and the marker
   * and end the run. A run that still cannot be finalized at its last attempt ends `failed` with
   * the reason, so that it never stays `running` (nor keeps its dedup claim).
   */
  private async finalizeJob(job: Job<RunJobData>, token?: string): Promise<unknown> {
    const { runId } = this.checked(job, parseRunJobData);
    const log = this.log.child({ runId });
    try {
      const spec = await this.specFor(job, runId, 'run');
      const cancelled = await this.specs.isCancelled(runId);
      const res = await finalizeRun(spec, await shardOutcomes(job), this.lifecycle, this.registries.sinks, {
        cancelled,
        formats: this.registries.formats,
        range: async (index) => this.specs.task(runId, index),
      });
      const level = res.status === 'committed' ? 'info' : res.status === 'partial' || res.status === 'cancelled' ? 'warn' : 'error';
      this.log[level]({ runId, status: res.status, manifest: res.manifest }, `layertap worker: run ${runId} ${res.status}: ${res.manifest}`);
      if (res.duplicateIds && res.duplicateIds.count > 0) {
        this.log.warn({ runId, duplicateIds: res.duplicateIds }, `layertap worker: run ${runId}: ${duplicateIdsWarning(res.duplicateIds)}`);
      }
      await this.storageBack(runId, log);
      this.opts.onRun?.(runId);
      return res;
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      // storage that does not answer: finalizing waits for it like shards do, without spending attempts
      if (token && (await this.waitForStorage(job, token, runId, err, log))) throw new DelayedError();
      // a storage that refuses for good (denied access, a missing bucket) will refuse every attempt
      const last = err instanceof UnrecoverableError || isPermanent(err) || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      this.log.error(
        { runId, attempt: job.attemptsMade + 1 },
        `layertap worker: run ${runId}: finalize attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1} failed: ${message}${last ? '; the run ends failed' : ''}`,
      );
      if (last) {
        // its shards are done: `layertap finalize` or a worker's sweep finishes it once storage is back
        await this.lifecycle.move(runId, 'failed', { error: `the run could not be finalized: ${message}`, unfinalized: true });
        await this.specs.markUnfinalized(runId);
        this.opts.onRun?.(runId);
      }
      throw isPermanent(err) ? new UnrecoverableError(message) : err;
    }
  }

  /** While Redis is away every connection fails every reconnect; one line per 5 s says it all. */
  private logError(err: Error): void {
    // this worker's own connection tells whether Redis is away; the socket error codes tell it for the others
    const code = (err as NodeJS.ErrnoException).code;
    if (this.redis.status !== 'ready' || (code !== undefined && CONNECTION_ERRORS.has(code))) {
      const now = Date.now();
      if (now - this.lastConnectionError < 5000) return;
      this.lastConnectionError = now;
      this.log.warn({ code: code ?? null }, `layertap worker: Redis connection lost (${err.message}); reconnecting`);
      return;
    }
    this.log.error({}, `layertap worker: ${err.message}`);
  }

  /** Stop active shards now and hand them back to the queue (what close() does when the grace period ends). */
  handBackActive(): void {
    if (!this.handBack.signal.aborted) this.handBack.abort(new Error('worker shutting down'));
  }

  /**
   * Stop taking jobs; let active shards finish for up to `graceMs`, then hand the rest back to
   * the queue; then release threads and connections. Safe to call more than once.
   */
  close(opts: { graceMs?: number } = {}): Promise<void> {
    this.closing ??= this.doClose(opts.graceMs ?? this.opts.graceMs ?? WORKER_DEFAULTS.graceMs);
    return this.closing;
  }

  private async doClose(graceMs: number): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    const workersClosed = Promise.allSettled([this.shardWorker?.close(), this.runWorker?.close(), this.scheduleWorker?.close()]);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace'>((r) => (timer = setTimeout(() => r('grace'), graceMs)));
    const first = await Promise.race([workersClosed.then(() => 'closed' as const), graceOver]);
    clearTimeout(timer);
    if (first === 'grace' && this.active.size > 0) {
      this.log.warn({ active: this.active.size }, `layertap worker: grace period of ${graceMs} ms over; handing back ${this.active.size} active shard(s)`);
      this.handBackActive();
    }
    await workersClosed;
    await this.queues.close();
    await this.pools.close();
    this.incremental.close();
    this.redis.disconnect();
  }
}

/** Socket errors that mean Redis cannot be reached. */
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);

/** What a shard of a cancelled run answers when it is taken: nothing written, counted as cancelled. */
function cancelledShard(index: number): ShardResult {
  return {
    index,
    cancelled: true,
    rows: 0,
    errorRows: 0,
    file: null,
    errorsFile: null,
    bytes: 0,
    seconds: 0,
    backend: '',
    shapes: {},
    layout: 'nchw',
    decodeMs: 0,
    forwardMs: 0,
  };
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
