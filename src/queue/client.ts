import { randomBytes } from 'node:crypto';
import { FlowProducer, Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { ResolvedJob } from '../config/resolved.js';
import { createSink, runPrefix } from '../storage/index.js';
import { createSource } from '../sources/index.js';
import type { ShardSpec } from '../sources/types.js';
import { bullConnection, redisOptions, type QueueSettings } from './connection.js';
import { checkRedis } from './redis-checks.js';
import { claimSnapshot } from './dedup.js';
import { snapshotKey } from '../pipeline/snapshot.js';
import { findBaseRun } from '../pipeline/incremental.js';
import { RunRegistry } from './run-registry.js';
import { RUNS_QUEUE, SHARDS_QUEUE, shardJobId, type RunJobData, type RunRecord, type RunSummary, type ShardJobData, type ShardResult } from './types.js';

/** A sortable, readable run id: UTC time plus randomness, e.g. 20261127T061502-3fa9c1. */
export function newRunId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '');
  return `${t}-${randomBytes(3).toString('hex')}`;
}

/** Options for {@link LayertapClient.enqueue}. */
export interface EnqueueOptions {
  /** @defaultValue 'manual' */
  trigger?: 'manual' | 'schedule';
  /** @defaultValue a new run id */
  runId?: string;
}

/** Enqueues runs and reads their state. One per process; `close()` when done. */
export class LayertapClient {
  readonly redis: Redis;
  readonly registry: RunRegistry;
  readonly runs: Queue<RunJobData>;
  readonly shards: Queue<ShardJobData>;
  private readonly flows: FlowProducer;

  constructor(readonly settings: QueueSettings) {
    const connection = bullConnection(settings.redisUrl);
    this.redis = new Redis({ ...redisOptions(settings.redisUrl), maxRetriesPerRequest: 3 });
    // commands report their own failures; an unhandled 'error' event would print a stack per reconnect try
    this.redis.on('error', () => undefined);
    this.registry = new RunRegistry(this.redis, settings.prefix);
    this.runs = new Queue<RunJobData>(RUNS_QUEUE, { connection, prefix: settings.prefix });
    this.shards = new Queue<ShardJobData>(SHARDS_QUEUE, { connection, prefix: settings.prefix });
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
   * Plan a resolved job into shards and add it as one flow: a parent run job whose children are
   * the shard jobs. Returns the run record.
   */
  async enqueue(job: ResolvedJob, opts: EnqueueOptions = {}): Promise<RunRecord> {
    const runId = opts.runId ?? newRunId();
    const source = createSource(job.source);
    const shards: ShardSpec[] = [];
    let totalRows = 0;
    try {
      for await (const s of source.plan(job.shardSize)) {
        shards.push(s);
        totalRows += s.count;
      }
    } finally {
      await source.close();
    }
    if (shards.length === 0) throw new Error(`source.uri: no rows found in ${job.source.uri}`);
    // the same job over the same data while a run of it is active: hand back that run
    const active = await claimSnapshot(this.redis, this.settings.prefix, await snapshotKey(job, shards), runId, this.registry);
    if (active) return { ...active, deduplicated: true };
    // the whole sink section: its endpoint, region and path style decide where the base run is found
    const sink = createSink(job.sink);
    // incremental: unchanged rows are carried over from the newest committed run with this fingerprint
    const base = job.incremental ? await findBaseRun(job, sink) : null;
    const createdAt = Date.now();
    const rec: RunRecord = {
      runId,
      name: job.name,
      fingerprint: job.fingerprint,
      status: 'queued',
      trigger: opts.trigger ?? 'manual',
      createdAt,
      shards: shards.length,
      totalRows,
      rows: 0,
      errorRows: 0,
      failedShards: [],
      outputUri: sink.resolve(runPrefix(job.name, job.fingerprint, runId)),
    };
    await this.registry.put(rec);
    await this.flows.add({
      name: 'run',
      queueName: RUNS_QUEUE,
      data: {
        runId,
        job,
        createdAt,
        shards: shards.map(({ index, start, count }) => ({ index, start, count })),
        trigger: opts.trigger ?? 'manual',
        baseRunId: base?.runId ?? null,
      } satisfies RunJobData,
      opts: { jobId: runId, attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 7 * 24 * 3600 } },
      children: shards.map((shard) => ({
        name: 'shard',
        queueName: SHARDS_QUEUE,
        data: { runId, job, shard, ...(base ? { base } : {}) } satisfies ShardJobData,
        opts: {
          jobId: shardJobId(runId, shard.index),
          attempts: job.attempts,
          backoff: { type: 'exponential', delay: 1000 },
          // a failed shard does not block the run: the finalizer records it and the run ends as failed
          ignoreDependencyOnFailure: true,
          removeOnComplete: { age: 7 * 24 * 3600 },
          removeOnFail: { age: 7 * 24 * 3600 },
        },
      })),
    });
    return rec;
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
    const job = await Job.fromId<ShardJobData>(this.shards, shardJobId(runId, 0));
    return job ? (await job.getState()) !== 'waiting' : false;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.runs.close(), this.shards.close(), this.flows.close()]);
    this.redis.disconnect();
  }
}

export type { ShardResult };
