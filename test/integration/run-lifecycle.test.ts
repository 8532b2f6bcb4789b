import { existsSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob, type JobInput } from '../../src/config/index.js';
import { defaultRegistries, resolveJob, type Registries } from '../../src/pipeline/index.js';
import { LayertapClient } from '../../src/queue/client.js';
import { ABANDONED_OWNER } from '../../src/queue/sweep.js';
import { runJob } from '../../src/queue/run.js';
import { ScheduleManager } from '../../src/queue/schedules.js';
import { defaultSinks, type Sink } from '../../src/storage/index.js';
import { MANIFEST } from '../../src/storage/layout.js';
import { StorageError } from '../../src/types/errors.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { endedRunLeftovers, scanKeys } from '../helpers/redis-keys.js';
import { readManifest, sleep, waitForFinal, writeRows } from './reliability-harness.js';

/**
 * The run lifecycle (queue/lifecycle.ts) under the faults that used to leave runs stuck: a sink
 * that cannot be written, a finalizer that fails, identical enqueues at the same moment, a
 * `layertap run` process that dies, and a `run` beside other work on the same Redis. After each,
 * the ended run's keys must all expire.
 */
describe('run lifecycle', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let redis: Redis;
  const prefixes: Array<() => Promise<void>> = [];
  const newPrefix = () => {
    const p = testPrefix();
    prefixes.push(p.cleanup);
    return p.prefix;
  };
  const job = (name: string, extra: Partial<JobInput> = {}): JobInput => ({
    name,
    source: { uri: join(tmp.dir, 'rows.npy') },
    model: { uri: SEED_MODEL },
    taps: [{ layer: 'linear_1.1' }],
    batchSize: 4,
    shardSize: 6,
    sink: { uri: join(tmp.dir, 'out') },
    ...extra,
  });

  beforeAll(async () => {
    tmp = await tempDir();
    redis = new Redis(REDIS_URL);
    await writeRows(join(tmp.dir, 'rows.npy'), 20);
  });
  afterAll(async () => {
    for (const c of prefixes) await c();
    redis?.disconnect();
    await tmp?.remove();
  });

  it('refuses a sink that cannot be written with exit 2, naming it, before anything is queued', async () => {
    const prefix = newPrefix();
    const out = join(tmp.dir, 'blocked-out');
    await mkdir(out, { recursive: true });
    // a file where the dataset's folder must go
    await writeFile(join(out, 'blocked'), 'not a folder');
    const file = join(tmp.dir, 'blocked.json');
    await writeFile(file, JSON.stringify(job('blocked', { sink: { uri: out } })));
    for (const command of ['run', 'enqueue']) {
      const r = await runCli([command, file], { REDIS_URL, LAYERTAP_PREFIX: prefix });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n').pop()).toMatch(new RegExp(`^layertap: sink\\.uri: cannot write in ${join(out, 'blocked')}: EEXIST`));
    }
    expect(await scanKeys(redis, `${prefix}:*`)).toEqual([]);
  }, 60_000);

  it('ends a run whose finalizer cannot write its manifest failed, with the reason; finalize finishes it once the sink is mended, and the same job runs again afresh', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const broken = { on: true };
    const file = defaultSinks().get('file');
    // the local sink, except that while `broken.on` it refuses the manifest, as a full or read-only disk would
    const sinks = defaultSinks().with('file', {
      ...file,
      async open(spec) {
        const sink = await file.open(spec);
        const put: Sink['put'] = async (key, data) => {
          if (broken.on && key.endsWith(`/${MANIFEST}`)) throw new StorageError(`cannot write ${key}: read-only file system`, false);
          return sink.put(key, data);
        };
        return Object.assign(Object.create(Object.getPrototypeOf(sink) as object) as Sink, sink, { put });
      },
    });
    const registries: Registries = { ...defaultRegistries(), sinks };
    const spec = parseJob(job('finalize-fails'));
    const first = await runJob(spec, { settings, threads: 1, registries });
    expect(first.status).toBe('failed');
    expect(first.error).toBe(
      'the run could not be finalized: cannot write finalize-fails/' + first.fingerprint + '/' + first.runId + '/_manifest.json: read-only file system',
    );
    // every shard had committed: the counts say so, and the record agrees with status
    expect(first.shards).toEqual({ total: 4, done: 4, failed: 0, cancelled: 0 });
    const rec = await (async () => {
      const c = new LayertapClient(settings);
      try {
        return await c.registry.get(first.runId);
      } finally {
        await c.close();
      }
    })();
    expect(rec?.status).toBe('failed');
    expect(rec?.unfinalized).toBe(true);
    broken.on = false;
    // once the sink is mended, the failed run is finished as its shards are: committed, with a manifest
    const client = new LayertapClient(settings, { registries });
    try {
      const done = await client.finalize(first.runId);
      expect(done.status).toBe('committed');
      expect(done.unfinalized).toBe(false);
      expect(done.rows).toBe(20);
      expect(existsSync(join(first.output.uri, '_SUCCESS'))).toBe(true);
      expect((await readManifest(first.output.uri)).status).toBe('committed');
      // only such a run is finalized again
      await expect(client.finalize(first.runId)).rejects.toThrow(`run ${first.runId} is committed; only a run that could not be finalized is finalized again`);
    } finally {
      await client.close();
    }
    expect(await endedRunLeftovers(redis, prefix, first.runId)).toEqual([]);
    // an ended run never absorbs a new one: the same job runs afresh
    const second = await runJob(spec, { settings, threads: 1, registries });
    expect(second.status).toBe('committed');
    expect(second.runId).not.toBe(first.runId);
    expect(second.rows).toBe(20);
    expect(existsSync(join(second.output.uri, '_SUCCESS'))).toBe(true);
    expect(await endedRunLeftovers(redis, prefix, second.runId)).toEqual([]);
  }, 90_000);

  it('gives two identical enqueues at the same moment one run; the other caller gets its id, deduplicated', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const a = new LayertapClient(settings);
    const b = new LayertapClient(settings);
    try {
      for (let round = 0; round < 8; round++) {
        // a name of its own per round: the run of the last round is still queued (no worker here)
        const resolved = await resolveJob(parseJob(job(`twins-${round}`)));
        const [x, y] = await Promise.all([a.enqueue(resolved), b.enqueue(resolved)]);
        expect(x.runId, `round ${round}`).toBe(y.runId);
        expect([x.deduplicated ?? false, y.deduplicated ?? false].sort(), `round ${round}`).toEqual([false, true]);
        const runs = (await a.registry.list()).filter((r) => r.name === `twins-${round}`);
        expect(runs.map((r) => [r.runId, r.status])).toEqual([[x.runId, 'queued']]);
      }
    } finally {
      await a.close();
      await b.close();
    }
  }, 90_000);

  it('gives two identical `run`s at the same moment one run, which both report committed', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const spec = parseJob(job('twin-runs'));
    const [x, y] = await Promise.all([runJob(spec, { settings, threads: 1 }), runJob(spec, { settings, threads: 1 })]);
    expect(x.runId).toBe(y.runId);
    expect([x.status, y.status]).toEqual(['committed', 'committed']);
    expect(x.rows).toBe(20);
    expect(await endedRunLeftovers(redis, prefix, x.runId)).toEqual([]);
  }, 90_000);

  it("`run` works on its own run only: another run's shards and schedule ticks on the same prefix are left to the deployment's workers", async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const client = new LayertapClient(settings);
    const schedules = new ScheduleManager(settings, client.redis);
    try {
      const other = await client.enqueue(await resolveJob(parseJob(job('someone-else'))));
      await schedules.add('tick-often', parseJob(job('scheduled')), { every: 1000 });
      const lines: string[] = [];
      const mine = await runJob(parseJob(job('mine', { shardSize: 2 })), { settings, threads: 1, log: (l) => lines.push(l) });
      expect(mine.status).toBe('committed');
      expect(mine.shards.done).toBe(10);
      // nothing of the other run was touched, and no tick was taken
      const st = await client.status(other.runId);
      expect(st?.status).toBe('queued');
      expect(st?.shards.done).toBe(0);
      expect(await client.shards.getJobCounts('active', 'completed', 'failed')).toEqual({ active: 0, completed: 0, failed: 0 });
      expect(await schedules.queue.getJobCounts('active', 'completed', 'failed')).toEqual({ active: 0, completed: 0, failed: 0 });
      expect(lines.filter((l) => l.includes(other.runId) || l.includes('schedule'))).toEqual([]);
      expect((await client.registry.list()).map((r) => r.name).sort()).toEqual(['mine', 'someone-else']);
      // the run's own queues went with it
      expect(await endedRunLeftovers(redis, prefix, mine.runId)).toEqual([]);
    } finally {
      await schedules.remove('tick-often');
      await schedules.close();
      await client.close();
    }
  }, 90_000);

  it('ends a run whose `layertap run` process stopped renewing its lease failed, with a manifest, and removes its queues', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const client = new LayertapClient(settings, { ownerTimeoutMs: 300 });
    try {
      const runId = '20261206T120000-0wner1';
      // enqueued to be worked alone, and then nobody works it or renews the lease: as if `run` was killed
      const rec = await client.enqueue(await resolveJob(parseJob(job('orphan'))), { runId, owner: runId });
      expect(rec.status).toBe('queued');
      expect((await client.status(runId))?.status).toBe('queued');
      await sleep(500);
      const st = await client.status(runId);
      expect(st?.status).toBe('failed');
      expect(st?.error).toBe(ABANDONED_OWNER);
      expect(st?.shards).toEqual({ total: 4, done: 0, failed: 0, cancelled: 0 });
      const m = await readManifest(rec.outputUri);
      expect(m.status).toBe('failed');
      expect(m.error).toBe(ABANDONED_OWNER);
      expect(await endedRunLeftovers(redis, prefix, runId)).toEqual([]);
    } finally {
      await client.close();
    }
  }, 60_000);

  it('keeps no key of a committed run without an expiry, and lets a later identical job start a new run', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const spec = parseJob(job('twice'));
    const first = await runJob(spec, { settings, threads: 1 });
    expect(first.status).toBe('committed');
    expect(await endedRunLeftovers(redis, prefix, first.runId)).toEqual([]);
    const client = new LayertapClient(settings);
    try {
      // enqueued, not run: an ended run never absorbs a new one
      const again = await client.enqueue(await resolveJob(spec));
      expect(again.deduplicated).toBeUndefined();
      expect(again.runId).not.toBe(first.runId);
      await client.cancel(again.runId);
      const worker = new (await import('../../src/queue/worker.js')).LayertapWorker({ settings, threads: 1, log: () => undefined });
      await worker.start();
      try {
        expect((await waitForFinal(client, again.runId, 30_000)).status).toBe('cancelled');
      } finally {
        await worker.close({ graceMs: 0 });
      }
      expect(await endedRunLeftovers(redis, prefix, again.runId)).toEqual([]);
    } finally {
      await client.close();
    }
  }, 90_000);
});
