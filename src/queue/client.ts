import { randomBytes } from 'node:crypto';
import { FlowProducer, Job, type Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { ResolvedJob } from '../config/resolved.js';
import { runPrefix } from '../storage/layout.js';
import { createSink } from '../storage/registry.js';
import { createSource } from '../sources/registry.js';
import type { ShardSpec, Source } from '../sources/types.js';
import type { Sink } from '../storage/types.js';
import { bullConnection, redisOptions, type QueueSettings } from './connection.js';
import { checkRedis } from './redis-checks.js';
import { claimSnapshot, releaseSnapshot } from './dedup.js';
import { SnapshotHasher } from '../pipeline/snapshot.js';
import { IdPlanWriter } from '../pipeline/plan-files.js';
import { RANGE_BYTES, runRedisBytes, RunSpecStore } from './run-specs.js';
import { checkRedisRoom, explainOutOfMemory, RedisLostPlanError } from './redis-memory.js';
import { shardJobOptions } from './shard-jobs.js';
import { failAbandonedPlans, finalizeAgain, PLANNING_TIMEOUT_MS } from './sweep.js';
import { DEFAULTS } from '../config/defaults.js';
import { RunCancelledError, RunLifecycle } from './lifecycle.js';
import { QueueSet } from './queues.js';
import { finalizeRun } from '../pipeline/finalize.js';
import { findBaseRun } from '../pipeline/incremental.js';
import { defaultRegistries, type Registries } from '../pipeline/registries.js';
import { planningRecord, RunRegistry } from './run-registry.js';
import {
  FINAL_STATUSES,
  RUNS_QUEUE,
  runQueues,
  SHARDS_QUEUE,
  shardJobId,
  type RunJobData,
  type RunRecord,
  type RunSpec,
  type RunSummary,
  type ShardResult,
  type ShardTask,
} from './types.js';

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
  /**
   * put the run in queues of its own, named after this (see {@link runQueues}), for a process
   * that works it alone (`layertap run`); that process must renew the run's owner lease
   * ({@link LayertapClient.holdRun}). @defaultValue the deployment's shared queues
   */
  owner?: string;
}

/** Options of {@link LayertapClient}. */
export interface LayertapClientOptions {
  /** where a job's source kind and sink scheme are found when it is planned into shards. @defaultValue the built-ins */
  registries?: Registries;
  /** shard jobs that exist at once per run. @defaultValue DEFAULTS.run.window (256; config/defaults.ts says why) */
  window?: number;
  /**
   * how long a run may stay `planning` without a sign of life from its enqueuer (renewed every
   * third of it) before any worker or `cancel` marks it failed. @defaultValue 60000
   */
  planningTimeoutMs?: number;
  /** how often an enqueuer looks whether the run it plans was cancelled. @defaultValue 250 */
  cancelPollMs?: number;
  /** how long the owner lease of a run worked alone lasts ({@link LayertapClient.holdRun}). @defaultValue 30000 */
  ownerTimeoutMs?: number;
}

/** Enqueues runs and reads their state. One per process; `close()` when done. */
export class LayertapClient {
  readonly redis: Redis;
  readonly registry: RunRegistry;
  readonly runs: Queue<RunJobData>;
  readonly shards: Queue<ShardTask>;
  readonly specs: RunSpecStore;
  readonly lifecycle: RunLifecycle;
  private readonly queues: QueueSet;
  private readonly flows: FlowProducer;
  private readonly registries: Registries;
  private readonly window: number;
  private readonly planningTimeoutMs: number;
  private readonly cancelPollMs: number;
  private readonly ownerTimeoutMs: number;
  /** live worker names, read at most every few seconds (see {@link lostShards}) */
  private workersSeen: { at: number; queue: string; names: Set<string> } | null = null;

  constructor(
    readonly settings: QueueSettings,
    opts: LayertapClientOptions = {},
  ) {
    this.registries = opts.registries ?? defaultRegistries();
    this.window = opts.window ?? DEFAULTS.run.window;
    if (!Number.isInteger(this.window) || this.window < 1) throw new Error(`options.window must be a positive integer, got ${opts.window}`);
    this.planningTimeoutMs = opts.planningTimeoutMs ?? PLANNING_TIMEOUT_MS;
    if (!Number.isInteger(this.planningTimeoutMs) || this.planningTimeoutMs < 100) {
      throw new Error(`options.planningTimeoutMs must be an integer of at least 100, got ${opts.planningTimeoutMs}`);
    }
    this.cancelPollMs = opts.cancelPollMs ?? 250;
    this.ownerTimeoutMs = opts.ownerTimeoutMs ?? DEFAULTS.run.ownerTimeoutMs;
    const connection = bullConnection(settings.redisUrl);
    this.redis = new Redis({ ...redisOptions(settings.redisUrl), maxRetriesPerRequest: 3 });
    // commands report their own failures; an unhandled 'error' event would print a stack per reconnect try
    this.redis.on('error', () => undefined);
    this.registry = new RunRegistry(this.redis, settings.prefix);
    this.specs = new RunSpecStore(this.redis, settings.prefix);
    this.lifecycle = new RunLifecycle(this.redis, settings.prefix, this.registry, this.specs);
    this.queues = new QueueSet(settings);
    this.runs = this.queues.get<RunJobData>(RUNS_QUEUE);
    this.shards = this.queues.get<ShardTask>(SHARDS_QUEUE);
    this.flows = new FlowProducer({ connection, prefix: settings.prefix });
    // without a listener BullMQ prints every reconnect failure as a stack trace; calls still reject
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
   * is added with the first `window` shard jobs, and it is `queued`. An empty source makes a run
   * of no shards, which commits empty. Returns the run record; throws {@link RunCancelledError}
   * when the run is cancelled while planning (it ends `cancelled`, with a manifest saying so).
   */
  async enqueue(job: ResolvedJob, opts: EnqueueOptions = {}): Promise<RunRecord> {
    const runId = opts.runId ?? newRunId();
    const trigger = opts.trigger ?? 'manual';
    const owner = opts.owner;
    const queues = runQueues(owner);
    const source = await createSource(job.source, this.registries.sources);
    const sink = await createSink(job.sink, this.registries.sinks);
    const prefix = runPrefix(job.name, job.fingerprint, runId);
    const createdAt = Date.now();
    const rec = planningRecord({ runId, name: job.name, fingerprint: job.fingerprint, trigger, createdAt, outputUri: sink.resolve(prefix), owner });
    // a run that cannot fit in Redis is refused before anything of it is written
    try {
      const shards = Math.ceil((await source.count()) / job.shardSize);
      await checkRedisRoom(this.redis, { shards, bytes: runRedisBytes(shards, this.window, JSON.stringify(job).length).peak });
    } catch (err) {
      await source.close();
      throw err;
    }
    const ttl = this.planningTimeoutMs;
    // stored when planning starts, so that a run whose plan never finishes can still be ended with a manifest
    const planningSpec: RunSpec = {
      runId,
      job,
      createdAt,
      trigger,
      shards: 0,
      totalRows: 0,
      window: this.window,
      idPlan: false,
      baseRunId: null,
      ...(owner ? { owner } : {}),
    };
    // `cancel` of a run being planned stops the plan at the next shard, within about cancelPollMs
    const stop = { cancelled: false };
    const beat = setInterval(() => this.specs.heartbeat(runId, ttl).catch(() => undefined), Math.max(50, Math.floor(ttl / 3)));
    const poll = setInterval(() => {
      this.specs.isCancelled(runId).then(
        (c) => {
          if (c) stop.cancelled = true;
        },
        () => undefined,
      );
    }, this.cancelPollMs);
    beat.unref();
    poll.unref();
    // once the run is queued, deduplicated or ended, its record stays; before, a failure removes it
    let settled = false;
    try {
      await this.specs.heartbeat(runId, ttl);
      await this.specs.clearRanges(runId);
      await this.registry.put(rec);
      await this.specs.put(planningSpec);
      const plan = await this.planInto(runId, job, source, sink, prefix, stop);
      if (stop.cancelled || (await this.specs.isCancelled(runId))) {
        settled = true;
        throw await this.endCancelledPlan({ ...planningSpec, shards: plan.shards, totalRows: plan.totalRows });
      }
      // the same job over the same data while a run of it is active: hand back that run
      const active = await claimSnapshot(this.redis, this.settings.prefix, plan.snapshot, runId, this.registry);
      if (active) return { ...active, deduplicated: true };
      // incremental: unchanged rows are carried over from the newest committed run with this fingerprint
      const base = job.incremental ? await findBaseRun(job, sink) : null;
      const spec: RunSpec = {
        ...planningSpec,
        shards: plan.shards,
        totalRows: plan.totalRows,
        idPlan: plan.idPlan,
        baseRunId: base?.runId ?? null,
        ...(base ? { base } : {}),
      };
      await this.specs.put(spec);
      if (await this.specs.isCancelled(runId)) {
        settled = true;
        throw await this.endCancelledPlan(spec);
      }
      // a Redis that restarted without persistence while planning has lost the record or ranges: queue nothing
      await this.checkPlanKept(runId, plan.shards);
      // a run worked alone holds its owner lease from before its jobs exist, so that it is ended if its process dies
      if (owner) await this.holdRun(runId);
      await this.flows.add({
        name: 'run',
        queueName: queues.runs,
        data: { runId } satisfies RunJobData,
        opts: {
          jobId: runId,
          attempts: FINALIZE_ATTEMPTS,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: { age: 7 * 24 * 3600, count: 100 },
        },
        children: plan.first.map((task) => ({ name: 'shard', queueName: queues.shards, data: task, opts: shardJobOptions(job, task) })),
      });
      settled = true;
      // cancelled in between: the shards see the cancel flag, and the run ends cancelled
      const moved = await this.lifecycle.move(runId, 'queued', { shards: plan.shards, totalRows: plan.totalRows });
      if (!moved) {
        // the record vanished just now: the jobs just added would run a run nobody can see
        settled = false;
        await (await Job.fromId(this.queues.get(queues.runs), runId))?.remove().catch(() => undefined);
        throw new RedisLostPlanError(runId);
      }
      return moved.record;
    } catch (err) {
      // one line with Redis's figures instead of a transaction's EXECABORT
      throw await explainOutOfMemory(this.redis, err);
    } finally {
      clearInterval(beat);
      clearInterval(poll);
      await source.close();
      await this.specs.release(runId, 'planning').catch(() => undefined);
      if (!settled) {
        // a job that cannot be planned, or one that joined an active run, leaves no run behind;
        // a cleanup that fails does not hide why the enqueue failed
        await this.specs.forget(runId).catch(() => undefined);
        await this.registry.remove(runId).catch(() => undefined);
        await releaseSnapshot(this.redis, this.settings.prefix, runId).catch(() => undefined);
      }
    }
  }

  /** Throws {@link RedisLostPlanError} unless the run's record and its whole range list are in Redis. */
  private async checkPlanKept(runId: string, shards: number): Promise<void> {
    const rec = await this.registry.get(runId);
    if (!rec || (await this.specs.rangesBytes(runId)) !== shards * RANGE_BYTES) throw new RedisLostPlanError(runId);
  }

  /** Ends a run cancelled while planning: a manifest and `_CANCELLED`, status `cancelled`. */
  private async endCancelledPlan(spec: RunSpec): Promise<RunCancelledError> {
    await finalizeRun(spec, { results: [], failures: [] }, this.lifecycle, this.registries.sinks, { cancelledWhilePlanning: true });
    return new RunCancelledError(spec.runId, await this.registry.get(spec.runId));
  }

  /**
   * Renews the owner lease of a run this process works alone (see {@link EnqueueOptions.owner});
   * call it at least every third of `ownerTimeoutMs`. A run whose lease runs out is failed by
   * the next worker, `run`, `status` or `cancel` that looks.
   */
  async holdRun(runId: string): Promise<void> {
    await this.specs.heartbeat(runId, this.ownerTimeoutMs, 'owner');
  }

  /** Removes the queues of a run worked alone, with every job in them, once it has ended. */
  async dropRunQueues(owner: string): Promise<void> {
    const q = runQueues(owner);
    // shards first: removing a child can move its parent back to waiting
    await this.queues.drop(q.shards);
    await this.queues.drop(q.runs);
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
   * Cancel a run: it is `cancelling` at once; pending shard jobs are removed, active ones finish
   * (their files are kept), and when the last one is done the run is finalized as `cancelled`
   * with `_CANCELLED` (or as what it was, if every shard had committed already). A run still
   * planning stops at its next shard and ends `cancelled` with a manifest. Returns the record, or
   * null for an unknown run; a run that is over already is returned as it is.
   */
  async cancel(runId: string): Promise<RunRecord | null> {
    await this.failAbandoned();
    const rec = await this.registry.get(runId);
    if (!rec || FINAL_STATUSES.includes(rec.status)) return rec;
    await this.specs.cancel(runId);
    const moved = await this.lifecycle.move(runId, 'cancelling');
    if (rec.status === 'planning') return moved?.record ?? rec;
    const own = runQueues(rec.owner);
    const parent = await Job.fromId<RunJobData>(this.queues.get(own.runs), runId);
    if (parent) {
      const shards = this.queues.get<ShardTask>(own.shards);
      let cursor = 0;
      do {
        const deps = await parent.getDependencies({ unprocessed: { cursor, count: 1000 } });
        cursor = deps.nextUnprocessedCursor ?? 0;
        for (const key of deps.unprocessed ?? []) {
          const child = await Job.fromId<ShardTask>(shards, key.slice(key.lastIndexOf(':') + 1));
          const state = child ? await child.getState() : 'unknown';
          // an active shard finishes; removing the last pending one lets the run finalize
          if (child && (state === 'waiting' || state === 'delayed' || state === 'prioritized')) await child.remove().catch(() => undefined);
        }
      } while (cursor !== 0);
    }
    return this.registry.get(runId);
  }

  /** Ends runs whose enqueuer died while planning, or whose `layertap run` process died (see {@link failAbandonedPlans}). */
  failAbandoned(): Promise<string[]> {
    return failAbandonedPlans(this.lifecycle, this.queues, this.registries.sinks);
  }

  /**
   * Finishes a run that ended `failed` because its finalizer could not write to storage, once
   * storage is back: the manifest and marker are written and the run takes that outcome. Throws
   * a {@link CannotFinalizeError} for any other run, or the storage's error if it still fails.
   */
  finalize(runId: string): Promise<RunRecord> {
    return finalizeAgain(this.lifecycle, this.queues, this.registries.sinks, runId);
  }

  /** The run's state: from its record when finished, else live from the queue. */
  async status(runId: string): Promise<RunSummary | null> {
    let rec = await this.registry.get(runId);
    if (!rec) return null;
    if (!FINAL_STATUSES.includes(rec.status) && rec.status !== 'planning') {
      // a run whose `layertap run` process died is ended here rather than shown running forever
      if ((await this.failAbandoned()).includes(runId)) rec = (await this.registry.get(runId)) ?? rec;
    }
    const cancelled = rec.cancelledShards ?? 0;
    let failed = rec.failedShards.length;
    let done = rec.doneShards ?? Math.max(0, rec.shards - failed - cancelled);
    let status = rec.status;
    let rows = rec.rows;
    let errorRows = rec.errorRows;
    let lost: RunSummary['lostShards'];
    let active: RunSummary['active'];
    let outage: RunSummary['storageOutage'] | null = null;
    if (status === 'queued' || status === 'running' || status === 'cancelling') {
      const own = runQueues(rec.owner);
      const parent = await Job.fromId<RunJobData>(this.queues.get(own.runs), runId);
      done = 0;
      if (parent) {
        const counts = await parent.getDependenciesCount();
        done = counts.processed ?? 0;
        failed = (counts.failed ?? 0) + (counts.ignored ?? 0);
        if (status === 'queued' && (done + failed > 0 || (await this.shardsActive(own.shards, runId)))) status = 'running';
      }
      const p = await this.registry.progress(runId);
      rows = Math.min(p.rows, rec.totalRows);
      errorRows = p.errorRows;
      active = { rows: p.activeRows, errorRows: p.activeErrorRows };
      lost = await this.lostShards(own.shards, runId);
      outage = await this.specs.storageOutage(runId);
    } else if (status === 'planning') {
      done = 0;
    }
    const seconds = ((rec.finishedAt ?? Date.now()) - rec.createdAt) / 1000;
    return {
      runId,
      name: rec.name,
      status,
      rows,
      errorRows,
      totalRows: rec.totalRows,
      ...(rec.documents !== undefined ? { documents: rec.documents } : {}),
      shards: { total: rec.shards, done, failed, cancelled },
      output: { uri: rec.outputUri, manifest: rec.manifest ?? null, files: rec.files ?? [], errorFiles: rec.errorFiles ?? [] },
      fingerprint: rec.fingerprint,
      backend: rec.backend ?? null,
      seconds,
      rowsPerSecond: status === 'committed' && seconds > 0 ? rows / seconds : null,
      failedShards: rec.failedShards,
      ...(rec.error ? { error: rec.error } : {}),
      ...(lost && lost.length > 0 ? { lostShards: lost } : {}),
      ...(active ? { active } : {}),
      ...(outage ? { storageOutage: outage } : {}),
    };
  }

  private async shardsActive(queue: string, runId: string): Promise<boolean> {
    const job = await Job.fromId<ShardTask>(this.queues.get(queue), shardJobId(runId, 0));
    // shard 0 gone: it completed and was removed
    return job ? (await job.getState()) !== 'waiting' : true;
  }

  /**
   * Active shards of the run whose worker no longer holds a connection to Redis (killed, or its
   * host lost): they wait for their lock to expire and a stalled check to put them back.
   */
  private async lostShards(queue: string, runId: string): Promise<NonNullable<RunSummary['lostShards']>> {
    const q = this.queues.get<ShardTask>(queue);
    const active = (await q.getJobs(['active'], 0, 999)).filter((j) => j.data?.runId === runId);
    if (active.length === 0) return [];
    const now = Date.now();
    if (!this.workersSeen || this.workersSeen.queue !== queue || now - this.workersSeen.at > 2000) {
      const clients = await q.getWorkers();
      const names = new Set(clients.map((c) => String(c['rawname'] ?? '').split(':w:')[1] ?? '').filter((n) => n !== ''));
      this.workersSeen = { at: now, queue, names };
    }
    const live = this.workersSeen.names;
    return active
      .filter((j) => j.processedBy !== undefined && !live.has(j.processedBy))
      .map((j) => ({ index: j.data.index, worker: j.processedBy as string }))
      .sort((a, b) => a.index - b.index);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.queues.close(), this.flows.close()]);
    this.redis.disconnect();
  }
}

/** Tries of a run's parent job (the finalizer): a run still not finalized after the last one ends `failed`. */
export const FINALIZE_ATTEMPTS = 5;

export type { ShardResult };
