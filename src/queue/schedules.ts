import { createHash } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { describeIssues } from '../config/load.js';
import { resolveJob } from '../pipeline/plan.js';
import type { SameKeys } from '../config/resolved-schema.js';
import { jobSchema, type JobConfig } from '../config/schema.js';
import type { Logger } from '../types/logger.js';
import { LayertapClient, newRunId } from './client.js';
import { bullConnection, type QueueSettings } from './connection.js';
import { checkedJobData, InvalidJobDataError } from './schemas.js';
import type { RunRecord } from './types.js';

export const SCHEDULES_QUEUE = 'schedules';

/** When a schedule fires: a cron pattern (optionally in a time zone) or a fixed interval. */
export type ScheduleTiming = { cron: string; tz?: string } | { every: number };

/** Data of each tick job a schedule produces. */
export interface ScheduleTickData {
  scheduleId: string;
  /** the job file's content, validated, with paths made absolute when the schedule was added */
  job: JobConfig;
}

/** A schedule as `schedule list` shows it. */
export interface ScheduleInfo {
  id: string;
  name: string;
  cron: string | null;
  tz: string | null;
  every: number | null;
  /** next fire time (ms since epoch) */
  next: number | null;
  iterations: number;
  lastRun: { runId: string; status: RunRecord['status']; createdAt: number } | null;
}

/** What a schedule id may be: it becomes Redis keys and job ids. */
const SCHEDULE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * A tick's data as `schedule add` stores it; a tick is checked against it before it enqueues a
 * run, since a job can be added to the queue by other means.
 */
export const scheduleTickDataSchema = z.strictObject({
  scheduleId: z.string().regex(SCHEDULE_ID, 'must use letters, digits, _ . - (at most 128 characters)'),
  job: jobSchema,
});
true satisfies SameKeys<ScheduleTickData, z.output<typeof scheduleTickDataSchema>>;

/** The data of a schedule tick, checked; throws {@link InvalidJobDataError} naming the fields at fault. */
export function parseScheduleTickData(data: unknown): ScheduleTickData {
  const r = scheduleTickDataSchema.safeParse(data, { reportInput: true });
  if (!r.success) throw new InvalidJobDataError('schedule tick', describeIssues(r.error));
  return r.data;
}

/** Schedule ids become Redis keys and job ids: keep them simple. */
export function checkScheduleId(id: string): string {
  if (!SCHEDULE_ID.test(id)) {
    throw new Error(`schedule id '${id}' must use letters, digits, _ . - (at most 128 characters)`);
  }
  return id;
}

/**
 * Cron and interval schedules for re-embedding, as BullMQ job schedulers: adding the same id
 * again replaces it (so hosts that add the same schedule leave one), and each tick is one job,
 * processed by one worker, which enqueues one run.
 */
export class ScheduleManager {
  readonly queue: Queue<ScheduleTickData>;

  constructor(
    private readonly settings: QueueSettings,
    private readonly redis: Redis,
  ) {
    this.queue = new Queue<ScheduleTickData>(SCHEDULES_QUEUE, { connection: bullConnection(settings.redisUrl), prefix: settings.prefix });
    // without a listener BullMQ prints every reconnect failure as a stack trace; calls still reject
    this.queue.on('error', () => undefined);
  }

  private lastRunKey(id: string): string {
    return `${this.settings.prefix}:layertap:schedule:${id}:last`;
  }

  /** Add or replace a schedule. The job must already be validated (and its paths absolute). */
  async add(id: string, job: JobConfig, timing: ScheduleTiming): Promise<ScheduleInfo> {
    checkScheduleId(id);
    if ('every' in timing) {
      if (!Number.isInteger(timing.every) || timing.every < 1000)
        throw new Error(`--every must be a whole number of milliseconds >= 1000, got ${timing.every}`);
    }
    const repeat = 'every' in timing ? { every: timing.every } : { pattern: timing.cron, ...(timing.tz ? { tz: timing.tz } : {}) };
    try {
      await this.queue.upsertJobScheduler(id, repeat, {
        name: 'tick',
        data: { scheduleId: id, job },
        opts: { attempts: 3, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: 100, removeOnFail: 100 },
      });
    } catch (err) {
      const m = (err as Error).message;
      if ('cron' in timing) throw new Error(`--cron '${timing.cron}'${timing.tz ? ` --tz '${timing.tz}'` : ''} is not a valid schedule: ${m}`);
      throw err;
    }
    const info = (await this.list()).find((s) => s.id === id);
    if (!info) throw new Error(`schedule '${id}' was not stored`);
    return info;
  }

  async remove(id: string): Promise<boolean> {
    const removed = await this.queue.removeJobScheduler(id);
    await this.redis.del(this.lastRunKey(id));
    return removed;
  }

  async list(client?: LayertapClient): Promise<ScheduleInfo[]> {
    const all = await this.queue.getJobSchedulers(0, -1, true);
    const out: ScheduleInfo[] = [];
    for (const s of all) {
      const id = s.key ?? s.id ?? '';
      const lastId = await this.redis.get(this.lastRunKey(id));
      let lastRun: ScheduleInfo['lastRun'] = null;
      if (lastId) {
        const st = client ? await client.status(lastId) : null;
        const rec = st ? null : await client?.registry.get(lastId);
        if (st) lastRun = { runId: lastId, status: st.status, createdAt: Date.now() - st.seconds * 1000 };
        else if (rec) lastRun = { runId: lastId, status: rec.status, createdAt: rec.createdAt };
      }
      out.push({
        id,
        name: s.template?.data?.job.name ?? s.name,
        cron: s.pattern ?? null,
        tz: s.tz ?? null,
        every: s.every ? Number(s.every) : null,
        next: s.next ?? null,
        iterations: s.iterationCount ?? 0,
        lastRun,
      });
    }
    return out;
  }

  /** What a worker does with a tick: resolve the job now (the model or data may have changed) and enqueue one run. */
  async tick(data: ScheduleTickData, client: LayertapClient, tick: { id: string; timestamp: number }): Promise<string> {
    // the run id follows from the tick, so a retried tick finds its run instead of starting another
    const runId = `${newRunId(new Date(tick.timestamp)).slice(0, 15)}-${createHash('sha256').update(tick.id).digest('hex').slice(0, 6)}`;
    let started = runId;
    if (!(await client.registry.get(runId))) {
      const resolved = await resolveJob({ ...data.job, incremental: data.job.incremental ?? true });
      // an identical run still active (a slow run, a tick soon after) is reused, not doubled
      started = (await client.enqueue(resolved, { trigger: 'schedule', runId })).runId;
    }
    await this.redis.set(this.lastRunKey(data.scheduleId), started);
    return started;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** Takes schedule ticks and turns each into one run. Part of every `layertap worker`. */
export class ScheduleWorker {
  private readonly client: LayertapClient;
  private readonly manager: ScheduleManager;
  private readonly worker: Worker<ScheduleTickData, { runId: string }>;

  /** `logError` gets the worker's connection errors (the shard worker passes its rate-limited logger). */
  constructor(settings: QueueSettings, log: Logger, logError: (err: Error) => void = (err) => log.error({}, `layertap worker: schedules: ${err.message}`)) {
    this.client = new LayertapClient(settings);
    this.manager = new ScheduleManager(settings, this.client.redis);
    this.worker = new Worker<ScheduleTickData, { runId: string }>(
      SCHEDULES_QUEUE,
      async (job) => {
        const data = checkedJobData(job.data, parseScheduleTickData);
        const runId = await this.manager.tick(data, this.client, { id: job.id ?? job.name, timestamp: job.timestamp });
        const rec = await this.client.registry.get(runId);
        const reused = rec !== null && rec.createdAt < job.timestamp;
        log.info(
          { scheduleId: data.scheduleId, runId, reused },
          `layertap worker: schedule ${data.scheduleId} tick -> run ${runId}${reused ? ' (an identical run was still active)' : ''}`,
        );
        return { runId };
      },
      { connection: bullConnection(settings.redisUrl), prefix: settings.prefix, concurrency: 1 },
    );
    this.worker.on('failed', (job, err) => {
      const scheduleId = String(job?.data.scheduleId ?? '?');
      log.error({ scheduleId }, `layertap worker: schedule ${scheduleId} tick failed: ${err.message}`);
    });
    this.worker.on('error', logError);
  }

  async waitUntilReady(): Promise<void> {
    await this.worker.waitUntilReady();
  }

  async close(): Promise<void> {
    await this.worker.close();
    await this.manager.close();
    await this.client.close();
  }
}
