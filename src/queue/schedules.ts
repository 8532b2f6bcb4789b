import { createHash } from 'node:crypto';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { JobConfigError } from '../config/errors.js';
import { describeIssues } from '../config/load.js';
import { resolveJob } from '../pipeline/plan.js';
import type { SameKeys } from '../config/resolved-schema.js';
import { jobSchema, type JobConfig } from '../config/schema.js';
import { FieldError, isPermanent } from '../types/errors.js';
import type { Logger } from '../types/logger.js';
import { LayertapClient, newRunId } from './client.js';
import { bullConnection, type QueueSettings } from './connection.js';
import { checkedJobData, InvalidJobDataError } from './schemas.js';
import { planningRecord } from './run-registry.js';
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
  /** the run of the newest tick, with its error when it failed (a tick that could not start its run is a `failed` run too) */
  lastRun: { runId: string; status: RunRecord['status']; createdAt: number; error: string | null } | null;
}

/**
 * The fingerprint of the run of a tick that failed before its job could be resolved (the model
 * or the source was gone): real fingerprints are hex digests, so it names no output folder.
 */
export const UNRESOLVED_FINGERPRINT = 'unresolved';

/** A tick that could not start its run: the run is recorded `failed` with `reason`, and the tick is not retried. */
export class TickFailedError extends Error {
  override readonly name = 'TickFailedError';
  constructor(
    readonly scheduleId: string,
    /** the tick's run, ended `failed` */
    readonly runId: string,
    /** why, as the run's error says */
    readonly reason: string,
  ) {
    super(`${reason} (run ${runId} failed)`);
  }
}

/** What a tick is, to {@link ScheduleManager.tick}. */
export interface Tick {
  /** the tick job's id (the same on every attempt) */
  id: string;
  /** when the tick fired (ms since epoch) */
  timestamp: number;
  /** no attempt follows this one: a failure is recorded as a failed run now. @defaultValue true */
  lastAttempt?: boolean;
}

/** The run id of a tick: it follows from the tick, so a retried tick finds its run instead of starting another. */
export function tickRunId(tick: { id: string; timestamp: number }): string {
  return `${newRunId(new Date(tick.timestamp)).slice(0, 15)}-${createHash('sha256').update(tick.id).digest('hex').slice(0, 6)}`;
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
 * processed by one worker, which enqueues one run. The job is the one given to {@link add},
 * stored in the schedule: later changes to its file do nothing until it is added again.
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

  /**
   * Removes a schedule with its ticks that have not started: the next one, one that fired but
   * no worker took yet, one waiting to be retried. A tick already running finishes its run, but
   * finds the schedule gone: it does not bring back its last run. Returns false when there was
   * neither a schedule nor a tick of that id.
   */
  async remove(id: string): Promise<boolean> {
    const removed = await this.queue.removeJobScheduler(id);
    let ticks = 0;
    for (const job of await this.queue.getJobs(['waiting', 'prioritized', 'delayed'], 0, -1)) {
      if (job.repeatJobKey !== id && job.data?.scheduleId !== id) continue;
      // a tick that a worker took in the meantime is locked: it sees the schedule gone and does nothing
      if (
        await job.remove().then(
          () => true,
          () => false,
        )
      )
        ticks++;
    }
    await this.redis.del(this.lastRunKey(id));
    return removed || ticks > 0;
  }

  /** The schedule's tick data as stored now (the job of its latest `add`), or null when it was removed. */
  async current(id: string): Promise<ScheduleTickData | null> {
    const s = await this.queue.getJobScheduler(id);
    if (!s) return null;
    return checkedJobData(s.template?.data, parseScheduleTickData);
  }

  async list(client?: LayertapClient): Promise<ScheduleInfo[]> {
    const all = await this.queue.getJobSchedulers(0, -1, true);
    const out: ScheduleInfo[] = [];
    for (const s of all) {
      const id = s.key ?? s.id ?? '';
      const lastId = await this.redis.get(this.lastRunKey(id));
      const rec = lastId && client ? await client.registry.get(lastId) : null;
      let lastRun: ScheduleInfo['lastRun'] = null;
      if (lastId && rec && client) {
        // live status for a run still going (the record says `queued` until it ends)
        const st = await client.status(lastId);
        lastRun = { runId: lastId, status: st?.status ?? rec.status, createdAt: rec.createdAt, error: st?.error ?? rec.error ?? null };
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

  /**
   * What a worker does with a tick: resolve the job now (the model or data may have changed) and
   * enqueue one run. A tick that cannot (the model or the source is gone, the job no longer
   * resolves) is a run too: on its last attempt, or at once when no attempt can help (a job
   * error), the run is recorded and ended `failed` with the reason, and {@link TickFailedError}
   * is thrown. The schedule's last run is written only while the schedule exists.
   */
  async tick(data: ScheduleTickData, client: LayertapClient, tick: Tick): Promise<string> {
    const runId = tickRunId(tick);
    const startedAt = Date.now();
    let started = runId;
    if (!(await client.registry.get(runId))) {
      let fingerprint: string | null = null;
      try {
        const resolved = await resolveJob({ ...data.job, incremental: data.job.incremental ?? true });
        fingerprint = resolved.fingerprint;
        if (resolved.model.precision === 'int8') {
          // each scheduled run measures the price of int8 on its first rows too; below model.minCosine it fails as a job error
          const { priceInt8 } = await import('../pipeline/precision.js');
          await priceInt8(resolved);
        }
        // an identical run still active (a slow run, a tick soon after) is reused, not doubled
        started = (await client.enqueue(resolved, { trigger: 'schedule', runId })).runId;
      } catch (err) {
        if (!(tick.lastAttempt ?? true) && !cannotHelp(err)) throw err;
        const reason = err instanceof Error ? err.message : String(err);
        await this.recordFailedTick(client, runId, data.job.name, fingerprint, startedAt, reason);
        await this.setLastRun(data.scheduleId, runId);
        throw new TickFailedError(data.scheduleId, runId, reason);
      }
    }
    await this.setLastRun(data.scheduleId, started);
    return started;
  }

  /**
   * A tick's run that never got past planning, recorded as a run that ended `failed`: created
   * `planning` (under a planning lease, so that a process that dies here leaves a run the next
   * sweep ends) and moved to `failed` by the run lifecycle, which gives the record its expiry.
   * A run the enqueue got further with is left to end by itself.
   */
  private async recordFailedTick(client: LayertapClient, runId: string, name: string, fingerprint: string | null, createdAt: number, reason: string) {
    if (await client.registry.get(runId)) return;
    await client.specs.heartbeat(runId, FAILED_TICK_LEASE_MS);
    // nothing was written: no output
    await client.registry.put(
      planningRecord({ runId, name, fingerprint: fingerprint ?? UNRESOLVED_FINGERPRINT, trigger: 'schedule', createdAt, outputUri: '' }),
    );
    await client.lifecycle.move(runId, 'failed', { error: reason });
  }

  /** Points the schedule's last run at `runId`, in one step with the check that the schedule still exists. */
  private async setLastRun(scheduleId: string, runId: string): Promise<void> {
    await this.redis.eval(SET_IF_SCHEDULED, 2, this.queue.toKey('repeat'), this.lastRunKey(scheduleId), scheduleId, runId);
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/**
 * The planning lease of a failed tick's run while its record is written and ended: if the process
 * dies in between, the next sweep finds the lease run out and ends the run.
 */
const FAILED_TICK_LEASE_MS = 30_000;

/** KEYS: BullMQ's schedulers set, the schedule's last-run key; ARGV: the schedule id, the run id. */
const SET_IF_SCHEDULED = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('SET', KEYS[2], ARGV[2]) return 1 end
return 0`;

/** A tick failure that another attempt, seconds later, would meet again: the job does not resolve. */
function cannotHelp(err: unknown): boolean {
  return err instanceof JobConfigError || err instanceof FieldError || isPermanent(err);
}

/** Takes schedule ticks and turns each into one run. Part of every `layertap worker`. */
export class ScheduleWorker {
  private readonly client: LayertapClient;
  private readonly manager: ScheduleManager;
  private readonly worker: Worker<ScheduleTickData, { runId: string | null }>;

  /** `logError` gets the worker's connection errors (the shard worker passes its rate-limited logger). */
  constructor(settings: QueueSettings, log: Logger, logError: (err: Error) => void = (err) => log.error({}, `layertap worker: schedules: ${err.message}`)) {
    this.client = new LayertapClient(settings);
    this.manager = new ScheduleManager(settings, this.client.redis);
    this.worker = new Worker<ScheduleTickData, { runId: string | null }>(
      SCHEDULES_QUEUE,
      async (job) => {
        const tickData = checkedJobData(job.data, parseScheduleTickData);
        // the schedule as it is now: a tick that fired before `remove` does nothing, one that
        // fired before `add` replaced the schedule runs the job that replaced it
        const data = await this.manager.current(tickData.scheduleId);
        if (!data) {
          log.info({ scheduleId: tickData.scheduleId }, `layertap worker: schedule ${tickData.scheduleId} was removed; its tick does nothing`);
          return { runId: null };
        }
        const tick: Tick = { id: job.id ?? job.name, timestamp: job.timestamp, lastAttempt: job.attemptsMade + 1 >= (job.opts.attempts ?? 1) };
        let runId: string;
        try {
          runId = await this.manager.tick(data, this.client, tick);
        } catch (err) {
          // recorded as a failed run: no attempt after this one
          if (err instanceof TickFailedError) throw new UnrecoverableError(err.message);
          throw err;
        }
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
      const retry = job !== undefined && !(err instanceof UnrecoverableError) && job.attemptsMade < (job.opts.attempts ?? 1);
      log.error(
        { scheduleId },
        `layertap worker: schedule ${scheduleId} tick failed: ${err.message}${retry ? ` (attempt ${job.attemptsMade} of ${job.opts.attempts}; tried again)` : ''}`,
      );
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
