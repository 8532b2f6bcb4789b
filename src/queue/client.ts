import { randomBytes } from 'node:crypto';
import { FlowProducer, Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { ResolvedJob } from '../config/resolved.js';
import { CANCELLED_MARKER, runPrefix } from '../storage/layout.js';
import { createSink } from '../storage/registry.js';
import { createSource } from '../sources/registry.js';
import type { ShardSpec, Source } from '../sources/types.js';
import type { Sink } from '../storage/types.js';
import { bullConnection, redisOptions, type QueueSettings } from './connection.js';
import { checkRedis } from './redis-checks.js';
import { claimSnapshot } from './dedup.js';
import { SnapshotHasher } from '../pipeline/snapshot.js';
import { IdPlanWriter } from '../pipeline/plan-files.js';
import { RunSpecStore } from './run-specs.js';
import { DEFAULT_WINDOW, shardJobOptions } from './shard-jobs.js';
import { failAbandonedPlans, PLANNING_TIMEOUT_MS } from './planning.js';
import { findBaseRun } from '../pipeline/incremental.js';
import { defaultRegistries, type Registries } from '../pipeline/registries.js';
import { RunRegistry } from './run-registry.js';
import {
  FINAL_STATUSES,
  RUNS_QUEUE,
  SHARDS_QUEUE,
  shardJobId,
  type RunJobData,
  type RunRecord,
  type RunSpec,
  type RunSummary,
  type ShardResult,
  type ShardTask,
} from './types.js';
import { FieldError } from '../types/errors.js';

/** A sortable, readable run id: UTC time plus randomness, e.g. 20261127T061502-3fa9c1. */
export function newRunId(now = new Date()): string {
  const t = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '');
  return `${t}-${randomBytes(3).toString('hex')}`;
}

/** Options for {@link LayertapClient.enqueue}. */
export interface EnqueueOptions {
  /** @defaultValue 'manual' */
  trigger?: 'manual' | 'schedule';
  /** @defaultValue a new run id */
  runId?: string;
}

/** Options of {@link LayertapClient}. */
export interface LayertapClientOptions {
  /** where a job's source kind and sink scheme are found when it is planned into shards. @defaultValue the built-ins */
  registries?: Registries;
  /** shard jobs that exist at once per run (see {@link DEFAULT_WINDOW}). @defaultValue 256 */
  window?: number;
  /**
   * how long a run may stay `planning` without a sign of life from its enqueuer (renewed every
   * third of it) before any worker or `cancel` marks it failed. @defaultValue 60000
   */
  planningTimeoutMs?: number;
}

/** Enqueues runs and reads their state. One per process; `close()` when done. */
export class LayertapClient {
  readonly redis: Redis;
  readonly registry: RunRegistry;
  readonly runs: Queue<RunJobData>;
  readonly shards: Queue<ShardTask>;
  readonly specs: RunSpecStore;
  private readonly flows: FlowProducer;
  private readonly registries: Registries;
  private readonly window: number;
  private readonly planningTimeoutMs: number;

  constructor(
    readonly settings: QueueSettings,
    opts: LayertapClientOptions = {},
  ) {
    this.registries = opts.registries ?? defaultRegistries();
    this.window = opts.window ?? DEFAULT_WINDOW;
    if (!Number.isInteger(this.window) || this.window < 1) throw new Error(`options.window must be a positive integer, got ${opts.window}`);
    this.planningTimeoutMs = opts.planningTimeoutMs ?? PLANNING_TIMEOUT_MS;
    if (!Number.isInteger(this.planningTimeoutMs) || this.planningTimeoutMs < 100) {
      throw new Error(`options.planningTimeoutMs must be an integer of at least 100, got ${opts.planningTimeoutMs}`);
    }
    const connection = bullConnection(settings.redisUrl);
    this.redis = new Redis({ ...redisOptions(settings.redisUrl), maxRetriesPerRequest: 3 });
    // commands report their own failures; an unhandled 'error' event would print a stack per reconnect try
    this.redis.on('error', () => undefined);
    this.registry = new RunRegistry(this.redis, settings.prefix);
    this.specs = new RunSpecStore(this.redis, settings.prefix);
    this.runs = new Queue<RunJobData>(RUNS_QUEUE, { connection, prefix: settings.prefix });
    this.shards = new Queue<ShardTask>(SHARDS_QUEUE, { connection, prefix: settings.prefix });
    this.flows = new FlowProducer({ connection, prefix: settings.prefix });
    // without a listener BullMQ prints every reconnect failure as a stack trace; calls still reject
    this.runs.on('error', () => undefined);
    this.shards.on('error', () => undefined);
    this.flows.on('error', () => undefined);
  }

  /**
   * Check Redis (answers, credentials, `noeviction` unless `settings.allowEviction`), then wait
   * for the queues. Throws a RedisSetupError instead of waiting forever on a Redis that is not there.
   */
  async waitUntilReady(): Promise<void> {
    // unset: checkRedis falls back to LAYERTAP_ALLOW_EVICTION, as the settings' doc promises
    await checkRedis(this.settings.redisUrl, { allowEviction: this.settings.allowEviction });
    await Promise.all([this.runs.waitUntilReady(), this.shards.waitUntilReady(), this.flows.waitUntilReady()]);
  }

  /**
   * Plan a resolved job into shards and queue it, with memory and Redis use that do not grow with
   * the dataset: the plan streams; shard ranges are packed into one Redis value; the ids of file
   * sources go to plan files under the run's `_plan/`; the resolved job (and an incremental run's
   * base) is stored once. The run is `planning` until the plan is complete; then its parent job
   * is added with the first `window` shard jobs, and it is `queued`. Returns the run record.
   */
  async enqueue(job: ResolvedJob, opts: EnqueueOptions = {}): Promise<RunRecord> {
    const runId = opts.runId ?? newRunId();
    const trigger = opts.trigger ?? 'manual';
    const source = await createSource(job.source, this.registries.sources);
    const sink = await createSink(job.sink, this.registries.sinks);
    const prefix = runPrefix(job.name, job.fingerprint, runId);
    const createdAt = Date.now();
    const rec: RunRecord = {
      runId,
      name: job.name,
      fingerprint: job.fingerprint,
      status: 'planning',
      trigger,
      createdAt,
      shards: 0,
      totalRows: 0,
      rows: 0,
      errorRows: 0,
      failedShards: [],
      outputUri: sink.resolve(prefix),
    };
    const ttl = this.planningTimeoutMs;
    await this.specs.heartbeat(runId, ttl);
    await this.specs.clearRanges(runId);
    await this.registry.put(rec);
    // `cancel` of a run being planned stops the plan at the next shard instead of after the whole listing
    const stop = { cancelled: false };
    const beat = setInterval(
      () => {
        this.specs.heartbeat(runId, ttl).catch(() => undefined);
        this.specs.isCancelled(runId).then(
          (c) => {
            if (c) stop.cancelled = true;
          },
          () => undefined,
        );
      },
      Math.max(50, Math.floor(ttl / 3)),
    );
    beat.unref();
    let queued = false;
    try {
      const plan = await this.planInto(runId, job, source, sink, prefix, stop);
      if (stop.cancelled) {
        queued = true;
        await this.specs.finished(runId);
        await sink.put(`${prefix}/${CANCELLED_MARKER}`, '');
        return (await this.registry.get(runId)) ?? { ...rec, status: 'cancelled' };
      }
      if (plan.shards === 0) throw new FieldError('source.uri', `no rows found in ${job.source.uri}`);
      // the same job over the same data while a run of it is active: hand back that run
      const active = await claimSnapshot(this.redis, this.settings.prefix, plan.snapshot, runId, this.registry);
      if (active) return { ...active, deduplicated: true };
      // incremental: unchanged rows are carried over from the newest committed run with this fingerprint
      const base = job.incremental ? await findBaseRun(job, sink) : null;
      const spec: RunSpec = {
        runId,
        job,
        createdAt,
        trigger,
        shards: plan.shards,
        totalRows: plan.totalRows,
        window: this.window,
        idPlan: plan.idPlan,
        baseRunId: base?.runId ?? null,
        ...(base ? { base } : {}),
      };
      await this.specs.put(spec);
      const now = await this.registry.get(runId);
      if (now?.status !== 'planning') {
        // cancelled (or given up on) while planning: nothing is queued
        queued = true;
        if (now?.status === 'cancelled') await sink.put(`${prefix}/${CANCELLED_MARKER}`, '');
        return now ?? rec;
      }
      await this.flows.add({
        name: 'run',
        queueName: RUNS_QUEUE,
        data: { runId } satisfies RunJobData,
        opts: { jobId: runId, attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 7 * 24 * 3600, count: 100 } },
        children: plan.first.map((task) => ({ name: 'shard', queueName: SHARDS_QUEUE, data: task, opts: shardJobOptions(job, task) })),
      });
      queued = true;
      const next = { ...rec, status: 'queued' as const, shards: plan.shards, totalRows: plan.totalRows };
      await this.registry.update(runId, { status: 'queued', shards: plan.shards, totalRows: plan.totalRows });
      return next;
    } finally {
      clearInterval(beat);
      await source.close();
      if (queued) await this.specs.planned(runId);
      else {
        // a job that cannot be planned leaves no run behind
        await this.specs.finished(runId);
        await this.registry.remove(runId);
      }
    }
  }

  /** Streams the source's plan into Redis (ranges) and plan files (ids); keeps only the first window's tasks. */
  private async planInto(runId: string, job: ResolvedJob, source: Source, sink: Sink, prefix: string, stop: { cancelled: boolean }) {
    const hasher = new SnapshotHasher(job);
    const ids = new IdPlanWriter(sink, prefix);
    const first: ShardTask[] = [];
    let pending: ShardSpec[] = [];
    let shards = 0;
    let totalRows = 0;
    let idPlan = false;
    for await (const s of source.plan(job.shardSize)) {
      if (stop.cancelled) break;
      await hasher.add(s);
      if (s.ids) {
        idPlan = true;
        await ids.add(s);
      }
      const task: ShardTask = { runId, index: s.index, start: s.start, count: s.count, ...(s.offset !== undefined ? { offset: s.offset } : {}) };
      if (first.length < this.window) first.push(task);
      pending.push({ index: s.index, start: s.start, count: s.count, ...(s.offset !== undefined ? { offset: s.offset } : {}) });
      if (pending.length >= 4096) {
        await this.specs.appendRanges(runId, pending);
        pending = [];
      }
      shards++;
      totalRows += s.count;
    }
    await this.specs.appendRanges(runId, pending);
    await ids.flush();
    return { shards, totalRows, first, idPlan, snapshot: await hasher.digest() };
  }

  /**
   * Cancel a run: pending shard jobs are removed, active ones finish (their files are kept), and
   * when the last one is done the run is finalized as `cancelled` with `_CANCELLED`. A run still
   * planning is cancelled at once. Returns the record, or null for an unknown run; a run that is
   * over already is returned as it is.
   */
  async cancel(runId: string): Promise<RunRecord | null> {
    await this.failAbandoned();
    const rec = await this.registry.get(runId);
    if (!rec || FINAL_STATUSES.includes(rec.status)) return rec;
    await this.specs.cancel(runId);
    if (rec.status === 'planning') {
      return this.registry.update(runId, { status: 'cancelled', finishedAt: Date.now(), error: 'cancelled while planning' });
    }
    await this.registry.update(runId, { status: 'cancelled' });
    const parent = await Job.fromId<RunJobData>(this.runs, runId);
    if (parent) {
      let cursor = 0;
      do {
        const deps = await parent.getDependencies({ unprocessed: { cursor, count: 1000 } });
        cursor = deps.nextUnprocessedCursor ?? 0;
        for (const key of deps.unprocessed ?? []) {
          const child = await Job.fromId<ShardTask>(this.shards, key.slice(key.lastIndexOf(':') + 1));
          const state = child ? await child.getState() : 'unknown';
          // an active shard finishes; removing the last pending one lets the run finalize
          if (child && (state === 'waiting' || state === 'delayed' || state === 'prioritized')) await child.remove().catch(() => undefined);
        }
      } while (cursor !== 0);
    }
    return this.registry.get(runId);
  }

  /** Marks runs whose enqueuer died while planning as failed (see {@link failAbandonedPlans}). */
  failAbandoned(): Promise<string[]> {
    return failAbandonedPlans(this.specs, this.registry, this.runs);
  }

  /** The run's state: from its record when finished, else live from the queue. */
  async status(runId: string): Promise<RunSummary | null> {
    const rec = await this.registry.get(runId);
    if (!rec) return null;
    let done = rec.shards - rec.failedShards.length;
    let failed = rec.failedShards.length;
    let status = rec.status;
    let rows = rec.rows;
    let errorRows = rec.errorRows;
    if (status === 'queued' || status === 'running') {
      const parent = await Job.fromId<RunJobData>(this.runs, runId);
      if (parent) {
        const counts = await parent.getDependenciesCount();
        done = counts.processed ?? 0;
        failed = (counts.failed ?? 0) + (counts.ignored ?? 0);
        const state = await parent.getState();
        if (state === 'failed') status = 'failed';
        else if (done + failed > 0 || (await this.shardsActive(runId))) status = 'running';
      }
      const p = await this.registry.progress(runId);
      rows = Math.min(p.rows, rec.totalRows);
      errorRows = p.errorRows;
    }
    const seconds = ((rec.finishedAt ?? Date.now()) - rec.createdAt) / 1000;
    return {
      runId,
      name: rec.name,
      status,
      rows,
      errorRows,
      totalRows: rec.totalRows,
      shards: { total: rec.shards, done, failed },
      output: { uri: rec.outputUri, manifest: rec.manifest ?? null, files: rec.files ?? [], errorFiles: rec.errorFiles ?? [] },
      fingerprint: rec.fingerprint,
      backend: rec.backend ?? null,
      seconds,
      rowsPerSecond: status === 'committed' && seconds > 0 ? rows / seconds : null,
      failedShards: rec.failedShards,
      ...(rec.error ? { error: rec.error } : {}),
    };
  }

  private async shardsActive(runId: string): Promise<boolean> {
    const job = await Job.fromId<ShardTask>(this.shards, shardJobId(runId, 0));
    // shard 0 gone: it completed and was removed
    return job ? (await job.getState()) !== 'waiting' : true;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.runs.close(), this.shards.close(), this.flows.close()]);
    this.redis.disconnect();
  }
}

export type { ShardResult };
