import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { absoluteUri, parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient, LayertapWorker, ScheduleManager, waitForRun } from '../../src/queue/index.js';
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
      const ranIds = ticks.map((t) => (t.returnvalue as { runId: string }).runId);
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
