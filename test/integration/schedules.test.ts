import { existsSync } from 'node:fs';
import { cp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { absoluteUri, parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { escapeHtml, listRuns, renderRunsPage } from '../../src/ops/dashboard/index.js';
import { ENDED_RECORD_TTL_S } from '../../src/queue/lifecycle.js';
import { LayertapClient, LayertapWorker, ScheduleManager, TickFailedError, tickRunId, UNRESOLVED_FINGERPRINT, waitForRun } from '../../src/queue/index.js';
import { ScheduleWorker } from '../../src/queue/schedules.js';
import { FieldError } from '../../src/types/errors.js';
import { callbackLogger } from '../../src/types/logger.js';
import { endedRunLeftovers } from '../helpers/redis-keys.js';
import { writeNpy } from '../../src/sources/npy.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

// Re-embedding on a schedule: BullMQ job schedulers upserted by id, one run per tick.
describe('schedules', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };
  let client: LayertapClient;

  const job = (name = 'sched', format: 'arrow' | 'parquet' = 'arrow') =>
    parseJob({
      name,
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_1.1' }],
      shardSize: 4,
      sink: { uri: join(tmp.dir, 'out'), format },
    });

  beforeAll(async () => {
    tmp = await tempDir();
    await writeNpy(
      join(tmp.dir, 'rows.npy'),
      new Float32Array(6 * 28 * 28).map((_, i) => (i % 13) / 13),
      [6, 28, 28, 1],
    );
    client = new LayertapClient(settings);
    await client.waitUntilReady();
  });
  afterAll(async () => {
    await client.close();
    await cleanup();
    await tmp.remove();
  });

  it('keeps one schedule when the same id is added twice at once', async () => {
    const a = new ScheduleManager(settings, client.redis);
    const b = new ScheduleManager(settings, client.redis);
    try {
      const j = job();
      await Promise.all([a.add('nightly', j, { cron: '0 3 * * *', tz: 'Europe/Berlin' }), b.add('nightly', j, { cron: '0 3 * * *', tz: 'Europe/Berlin' })]);
      const list = await a.list(client);
      expect(list.filter((s) => s.id === 'nightly')).toHaveLength(1);
      const s = list.find((x) => x.id === 'nightly')!;
      expect(s).toMatchObject({ name: 'sched', cron: '0 3 * * *', tz: 'Europe/Berlin', every: null, lastRun: null });
      // next fire time is a 03:00 in Berlin
      const next = new Date(s.next!);
      const berlinHour = Number(new Intl.DateTimeFormat('en-GB', { hour: '2-digit', hour12: false, timeZone: 'Europe/Berlin' }).format(next));
      expect(berlinHour).toBe(3);
      expect(await a.remove('nightly')).toBe(true);
      expect((await a.list()).map((x) => x.id)).not.toContain('nightly');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('rejects a bad cron pattern and a bad id', async () => {
    const m = new ScheduleManager(settings, client.redis);
    try {
      await expect(m.add('x', job(), { cron: 'not a cron' })).rejects.toThrow(/--cron 'not a cron' is not a valid schedule/);
      await expect(m.add('bad id!', job(), { every: 5000 })).rejects.toThrow(/schedule id 'bad id!' must use/);
    } finally {
      await m.close();
    }
  });

  it('fires one run per tick with --every, each committed, across a worker restart', async () => {
    let worker = new LayertapWorker({ settings, threads: 1, concurrency: 2, log: () => undefined });
    const m = new ScheduleManager(settings, client.redis);
    await worker.start();
    try {
      const j = { ...job(), source: { uri: absoluteUri(job().source.uri) } };
      await m.add('every-second', j, { every: 1000 });
      const deadline = Date.now() + 20_000;
      let runs = await client.registry.list();
      while (Date.now() < deadline && runs.filter((r) => r.trigger === 'schedule').length < 1) {
        await new Promise((r) => setTimeout(r, 100));
        runs = await client.registry.list();
      }
      // the schedule lives in Redis, not in a worker: a new worker picks the ticks up
      await worker.close();
      worker = new LayertapWorker({ settings, threads: 1, concurrency: 2, log: () => undefined });
      await worker.start();
      while (Date.now() < deadline && runs.filter((r) => r.trigger === 'schedule').length < 3) {
        await new Promise((r) => setTimeout(r, 200));
        runs = await client.registry.list();
      }
      await m.remove('every-second');
      // let the last tick's run finish
      const scheduled = (await client.registry.list()).filter((r) => r.trigger === 'schedule');
      expect(scheduled.length).toBeGreaterThanOrEqual(3);
      for (const r of scheduled) {
        const s = await waitForRun(client, r.runId);
        expect(s.status).toBe('committed');
        expect(s.rows).toBe(6);
      }
      // every tick led to one run, and every scheduled run came from a tick (a tick that found an
      // identical run still active reuses it, so ticks >= runs)
      const ticks = await m.queue.getJobs(['completed']);
      // (a tick taken while the schedule was being removed does nothing: runId null)
      const ranIds = ticks.map((t) => (t.returnvalue as { runId: string | null }).runId).filter((id) => id !== null);
      expect(ranIds.length).toBeGreaterThanOrEqual(scheduled.length);
      expect(new Set(ranIds)).toEqual(new Set(scheduled.map((r) => r.runId)));
    } finally {
      await m.close();
      await worker.close();
    }
  });

  it('returns the active run instead of starting an identical one', async () => {
    const resolved = await resolveJob(job());
    const a = await client.enqueue(resolved);
    const b = await client.enqueue(resolved);
    expect(b.runId).toBe(a.runId);
    expect(b.deduplicated).toBe(true);
    // once it is over, the same job is a new run
    const worker = new LayertapWorker({ settings, threads: 1, log: () => undefined });
    await worker.start();
    try {
      expect((await waitForRun(client, a.runId)).status).toBe('committed');
      const c = await client.enqueue(resolved);
      expect(c.runId).not.toBe(a.runId);
      expect((await waitForRun(client, c.runId)).status).toBe('committed');
    } finally {
      await worker.close();
    }
  });

  // run dedup hands back an active run only for a job that would write the same output: a job
  // that differs in anything that changes what is written, or where, is a run of its own
  it('gives a Parquet job its own run while the same job writing Arrow is active', async () => {
    const arrow = await client.enqueue(await resolveJob(job('dedup', 'arrow')));
    const parquet = await client.enqueue(await resolveJob(job('dedup', 'parquet')));
    expect(parquet.deduplicated).toBeUndefined();
    expect(parquet.runId).not.toBe(arrow.runId);
    // the same Parquet job again is still handed the active Parquet run
    const again = await client.enqueue(await resolveJob(job('dedup', 'parquet')));
    expect(again.runId).toBe(parquet.runId);
    expect(again.deduplicated).toBe(true);

    const worker = new LayertapWorker({ settings, threads: 1, log: () => undefined });
    await worker.start();
    try {
      const a = await waitForRun(client, arrow.runId);
      const p = await waitForRun(client, parquet.runId);
      expect([a.status, p.status]).toEqual(['committed', 'committed']);
      expect(a.output.files.map((f) => f.slice(-17))).toEqual(['part-00000.arrow', 'part-00001.arrow'].map((f) => `/${f}`));
      expect(p.output.files.map((f) => f.slice(-19))).toEqual(['part-00000.parquet', 'part-00001.parquet'].map((f) => `/${f}`));
      for (const f of [...a.output.files, ...p.output.files]) expect(existsSync(f)).toBe(true);
    } finally {
      await worker.close();
    }
  });
});

// Ticks that cannot start their run, and schedules removed while a tick waits or runs.
describe('schedules: failed ticks and removal', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };
  let client: LayertapClient;
  const lines: string[] = [];
  const log = callbackLogger((msg) => lines.push(msg));

  const job = (name: string, model = SEED_MODEL) =>
    parseJob({
      name,
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: model },
      taps: [{ layer: 'linear_1.1' }],
      shardSize: 4,
      sink: { uri: join(tmp.dir, 'out') },
    });

  /** Waits until `find` returns something, polling every 100 ms for at most `ms`. */
  async function until<T>(find: () => Promise<T | null | undefined>, ms: number, what: string): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await find();
      if (v !== null && v !== undefined) return v;
      if (Date.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const runsNamed = async (name: string) => (await client.registry.list(1000)).filter((r) => r.name === name);
  const ticksOf = async (m: ScheduleManager, id: string) =>
    (await m.queue.getJobs(['waiting', 'prioritized', 'delayed', 'active'], 0, -1)).filter((j) => j.data.scheduleId === id);

  beforeAll(async () => {
    tmp = await tempDir();
    await writeNpy(
      join(tmp.dir, 'rows.npy'),
      new Float32Array(6 * 28 * 28).map((_, i) => (i % 13) / 13),
      [6, 28, 28, 1],
    );
    client = new LayertapClient(settings);
    await client.waitUntilReady();
  });
  afterAll(async () => {
    await client.close();
    await cleanup();
    await tmp.remove();
  });

  it('records a tick whose model is gone as a failed run, in runs, status, the runs page and schedule list', async () => {
    const modelDir = join(tmp.dir, 'model');
    await cp(dirname(SEED_MODEL), modelDir, { recursive: true });
    const model = join(modelDir, 'model.json');
    const m = new ScheduleManager(settings, client.redis);
    const worker = new ScheduleWorker(settings, log);
    try {
      await m.add('gone-model', job('gone', model), { every: 1000 });
      await rm(modelDir, { recursive: true });
      await worker.waitUntilReady();
      const [rec] = await until(
        async () => {
          const r = await runsNamed('gone');
          return r.length > 0 ? r : null;
        },
        15_000,
        'a run of the failing tick',
      );
      const reason = `model.uri: model file not found: ${model}`;
      expect(rec).toMatchObject({
        name: 'gone',
        status: 'failed',
        trigger: 'schedule',
        fingerprint: UNRESOLVED_FINGERPRINT,
        error: reason,
        shards: 0,
        rows: 0,
        errorRows: 0,
        outputUri: '',
      });
      expect(rec!.finishedAt).toBeGreaterThanOrEqual(rec!.createdAt);
      // the run id follows from the tick, and the tick failed at once, not retried: a job error
      const failedTick = await until(
        async () => (await m.queue.getJobs(['failed'])).find((j) => tickRunId({ id: j.id!, timestamp: j.timestamp }) === rec!.runId),
        5_000,
        'the failed tick',
      );
      expect(failedTick.attemptsMade).toBe(1);
      expect(failedTick.failedReason).toBe(`${reason} (run ${rec!.runId} failed)`);
      expect(lines).toContain(`layertap worker: schedule gone-model tick failed: ${reason} (run ${rec!.runId} failed)`);
      // an ended run: its record expires, nothing else of it is left
      const ttl = await client.redis.ttl(`${prefix}:layertap:run:${rec!.runId}`);
      expect(ttl).toBeGreaterThan(ENDED_RECORD_TTL_S - 60);
      expect(ttl).toBeLessThanOrEqual(ENDED_RECORD_TTL_S);
      expect(await endedRunLeftovers(client.redis, prefix, rec!.runId)).toEqual([]);

      expect(await client.status(rec!.runId)).toMatchObject({ status: 'failed', error: reason, fingerprint: UNRESOLVED_FINGERPRINT });
      const view = (await listRuns(client)).find((v) => v.runId === rec!.runId);
      expect(view).toMatchObject({ status: 'failed', trigger: 'schedule', error: reason });
      expect(renderRunsPage([view!])).toContain(`<div class="err">${escapeHtml(reason)}</div>`);
      const s = (await m.list(client)).find((x) => x.id === 'gone-model')!;
      expect(s.lastRun).toMatchObject({ status: 'failed', error: reason });
      // every later tick is a failed run of its own, and the list shows the newest
      const more = await until(
        async () => {
          const r = await runsNamed('gone');
          return r.length >= 2 ? r : null;
        },
        15_000,
        'a second failed tick',
      );
      expect(more.every((r) => r.status === 'failed' && r.error === reason)).toBe(true);
      const newest = (await m.list(client)).find((x) => x.id === 'gone-model')!.lastRun!;
      expect(more.map((r) => r.runId)).toContain(newest.runId);
      expect(newest.createdAt).toBeGreaterThan(rec!.createdAt);
    } finally {
      await m.remove('gone-model');
      await worker.close();
      await m.close();
    }
  });

  it('records a tick whose run cannot be planned with the fingerprint it resolved; a fault that may pass is retried first', async () => {
    const m = new ScheduleManager(settings, client.redis);
    let fault: Error = new Error('connection to the source lost');
    // a client whose enqueue fails as a source that breaks while it is listed would
    class FailingClient extends LayertapClient {
      override async enqueue(): Promise<never> {
        throw fault;
      }
    }
    const failing = new FailingClient(settings);
    try {
      const j = job('plan-fails');
      await m.add('plan-fails', j, { every: 60_000 });
      const data = (await m.current('plan-fails'))!;
      const tick = { id: 'repeat:plan-fails:1', timestamp: Date.now() };
      const runId = tickRunId(tick);
      // not the last attempt, and a fault that may pass: thrown for BullMQ to retry, no run recorded
      await expect(m.tick(data, failing, { ...tick, lastAttempt: false })).rejects.toBe(fault);
      expect(await client.registry.get(runId)).toBeNull();
      // the last attempt: a failed run with the resolved job's fingerprint
      await expect(m.tick(data, failing, { ...tick, lastAttempt: true })).rejects.toThrow(new TickFailedError('plan-fails', runId, fault.message));
      const fingerprint = (await resolveJob({ ...j, incremental: true })).fingerprint;
      expect(await client.registry.get(runId)).toMatchObject({ status: 'failed', fingerprint, error: 'connection to the source lost', trigger: 'schedule' });
      expect((await m.list(client)).find((x) => x.id === 'plan-fails')!.lastRun).toMatchObject({
        runId,
        status: 'failed',
        error: 'connection to the source lost',
      });
      // a job error fails at once, whatever the attempt
      fault = new FieldError('source.uri', 'cannot list images under /data: permission denied (EACCES)');
      const tick2 = { id: 'repeat:plan-fails:2', timestamp: Date.now() };
      await expect(m.tick(data, failing, { ...tick2, lastAttempt: false })).rejects.toBeInstanceOf(TickFailedError);
      expect(await client.registry.get(tickRunId(tick2))).toMatchObject({ status: 'failed', error: fault.message });
      // a tick retried after its run was recorded finds that run
      expect(await m.tick(data, client, tick2)).toBe(tickRunId(tick2));
    } finally {
      await m.remove('plan-fails');
      await failing.close();
      await m.close();
    }
  });

  it('removes a tick that fired but was not taken: no worker runs it afterwards', async () => {
    const m = new ScheduleManager(settings, client.redis);
    try {
      await m.add('pending', job('pending'), { every: 1000 });
      // the first tick of an interval fires at once; with no worker to take it, it waits
      const [next] = await until(
        async () => {
          const t = await ticksOf(m, 'pending');
          return t.length > 0 ? t : null;
        },
        5_000,
        'the first tick',
      );
      expect(await next!.getState()).toBe('waiting');
      expect(await m.remove('pending')).toBe(true);
      expect(await ticksOf(m, 'pending')).toEqual([]);
      const worker = new ScheduleWorker(settings, log);
      try {
        await worker.waitUntilReady();
        await new Promise((r) => setTimeout(r, 2500));
      } finally {
        await worker.close();
      }
      expect(await runsNamed('pending')).toEqual([]);
      expect(await client.redis.exists(`${prefix}:layertap:schedule:pending:last`)).toBe(0);
      expect((await m.list()).map((s) => s.id)).not.toContain('pending');
    } finally {
      await m.close();
    }
  });

  it('skips a tick whose schedule is gone by the time a worker takes it', async () => {
    const m = new ScheduleManager(settings, client.redis);
    try {
      await m.add('taken-late', job('taken-late'), { every: 1000 });
      const [next] = await until(
        async () => {
          const t = await ticksOf(m, 'taken-late');
          return t.length > 0 ? t : null;
        },
        5_000,
        'the first tick',
      );
      expect(await next!.getState()).toBe('waiting');
      // the scheduler goes, the tick stays: as when a worker took it just before `remove` looked
      await m.queue.removeJobScheduler('taken-late');
      const worker = new ScheduleWorker(settings, log);
      try {
        await worker.waitUntilReady();
        const done = await until(async () => (await m.queue.getJobs(['completed'])).find((j) => j.data.scheduleId === 'taken-late'), 10_000, 'the tick');
        expect(done.returnvalue).toEqual({ runId: null });
      } finally {
        await worker.close();
      }
      expect(lines).toContain('layertap worker: schedule taken-late was removed; its tick does nothing');
      expect(await runsNamed('taken-late')).toEqual([]);
      expect(await client.redis.exists(`${prefix}:layertap:schedule:taken-late:last`)).toBe(0);
    } finally {
      await m.close();
    }
  });

  it('runs the job of the latest add, also for a tick that fired before the schedule was replaced', async () => {
    const m = new ScheduleManager(settings, client.redis);
    try {
      await m.add('replaced', job('before-edit'), { every: 60_000 });
      const [fired] = await until(
        async () => {
          const t = await ticksOf(m, 'replaced');
          return t.length > 0 ? t : null;
        },
        5_000,
        'the first tick',
      );
      expect(await fired!.getState()).toBe('waiting');
      expect(fired!.data.job.name).toBe('before-edit');
      await m.add('replaced', job('after-edit'), { every: 60_000 });
      const worker = new ScheduleWorker(settings, log);
      try {
        await worker.waitUntilReady();
        await until(async () => (await fired!.getState()) === 'completed' || null, 10_000, 'the tick that fired first');
      } finally {
        await worker.close();
      }
      expect(await runsNamed('before-edit')).toEqual([]);
      const ran = (await m.queue.getJob(fired!.id!))!.returnvalue as { runId: string | null };
      expect(ran.runId).not.toBeNull();
      expect((await client.registry.get(ran.runId!))?.name).toBe('after-edit');
    } finally {
      await m.remove('replaced');
      await m.close();
    }
  });

  it('does not bring a schedule removed while its tick runs back: the run goes on, its last run is not written', async () => {
    const m = new ScheduleManager(settings, client.redis);
    let reached!: () => void;
    const atEnqueue = new Promise<void>((r) => (reached = r));
    let go!: () => void;
    const gate = new Promise<void>((r) => (go = r));
    // a client that pauses at enqueue: the tick is running when the schedule is removed
    class SlowClient extends LayertapClient {
      override async enqueue(...args: Parameters<LayertapClient['enqueue']>) {
        reached();
        await gate;
        return super.enqueue(...args);
      }
    }
    const slow = new SlowClient(settings);
    try {
      await m.add('running', job('running'), { every: 60_000 });
      const data = (await m.current('running'))!;
      const ticking = m.tick(data, slow, { id: 'repeat:running:1', timestamp: Date.now() });
      await atEnqueue;
      expect(await m.remove('running')).toBe(true);
      go();
      const runId = await ticking;
      expect((await client.registry.get(runId))?.status).toBe('queued');
      expect(await client.redis.exists(`${prefix}:layertap:schedule:running:last`)).toBe(0);
      // added again, the schedule starts without the removed one's last run
      await m.add('running', job('running'), { every: 60_000 });
      expect((await m.list(client)).find((s) => s.id === 'running')!.lastRun).toBeNull();
      await m.remove('running');
      await client.cancel(runId);
    } finally {
      await slow.close();
      await m.close();
    }
  });
});
