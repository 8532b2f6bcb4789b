import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { readFile } from 'node:fs/promises';
import { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob, type ResolvedJob } from '../../src/config/index.js';
import { defaultRegistries, defaultSources, type ReadHint, type ShardSpec } from '../../src/index.js';
import { LayertapError } from '../../src/types/errors.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient } from '../../src/queue/client.js';
import { ABANDONED_PLAN } from '../../src/queue/sweep.js';
import { RunCancelledError } from '../../src/queue/lifecycle.js';
import { endedRunLeftovers } from '../helpers/redis-keys.js';
import { RANGE_BYTES } from '../../src/queue/run-specs.js';
import type { ShardTask } from '../../src/queue/types.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { REDIS_URL, ROOT, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { npyWith, slowNpy } from '../helpers/sources.js';
import { readManifest, readRunFolder, sleep, waitForFinal, writeRows } from './reliability-harness.js';

/** Bytes Redis holds under a key prefix (MEMORY USAGE of each key: what the run costs, whatever else the server holds). */
async function bytesUnder(redis: Redis, prefix: string): Promise<number> {
  let total = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) total += (await redis.memory('USAGE', k, 'SAMPLES', '0')) ?? 0;
  } while (cursor !== '0');
  return total;
}

const npyJob = (uri: string, sink: string, shardSize: number, name = 'scale') =>
  resolveJob(parseJob({ name, source: { uri }, model: { uri: SEED_MODEL }, taps: [{ layer: 'linear_1.1' }], batchSize: 4, shardSize, sink: { uri: sink } }));

describe('scale: shard jobs in a window, plans stored once, cancel, a dead enqueuer', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let redis: Redis;
  const prefixes: Array<() => Promise<void>> = [];
  const newPrefix = () => {
    const p = testPrefix();
    prefixes.push(p.cleanup);
    return p.prefix;
  };

  beforeAll(async () => {
    tmp = await tempDir();
    redis = new Redis(REDIS_URL);
    await writeRows(join(tmp.dir, 'x.npy'), 23);
  });
  afterAll(async () => {
    for (const c of prefixes) await c();
    redis?.disconnect();
    await tmp?.remove();
  });

  it('keeps `window` small shard jobs queued and adds the rest as shards start; the run commits every shard', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const job = await npyJob(join(tmp.dir, 'x.npy'), join(tmp.dir, 'out-window'), 2);
    const client = new LayertapClient(settings, { window: 3 });
    const worker = new LayertapWorker({ settings, threads: 1, concurrency: 2, log: () => undefined });
    try {
      const rec = await client.enqueue(job);
      expect(rec.status).toBe('queued');
      expect(rec.shards).toBe(12);
      expect(rec.totalRows).toBe(23);
      const counts = await client.shards.getJobCounts('waiting', 'active', 'completed');
      expect(counts).toEqual({ waiting: 3, active: 0, completed: 0 });
      const first = await Job.fromId<ShardTask>(client.shards, `${rec.runId}-2`);
      // no resolved job, no ids: a shard job is its range
      expect(first?.data).toEqual({ runId: rec.runId, index: 2, start: 4, count: 2 });
      expect(await client.specs.task(rec.runId, 11)).toEqual({ runId: rec.runId, index: 11, start: 22, count: 1 });
      expect(await redis.strlen(`${prefix}:layertap:run:${rec.runId}:ranges`)).toBe(12 * RANGE_BYTES);
      await worker.start();
      const s = await waitForFinal(client, rec.runId, 60_000);
      expect(s.status).toBe('committed');
      expect(s.rows).toBe(23);
      expect(s.shards).toEqual({ total: 12, done: 12, failed: 0, cancelled: 0 });
      const folder = await readRunFolder(s.output.uri);
      expect([...folder.featureIds.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 23 }, (_, i) => String(i)));
      expect([...folder.featureIds.values()].every((n) => n === 1)).toBe(true);
      // the range list goes with the run, and what stays expires
      expect(await redis.exists(`${prefix}:layertap:run:${rec.runId}:ranges`)).toBe(0);
      expect(await endedRunLeftovers(redis, prefix, rec.runId)).toEqual([]);
      expect((await client.shards.getJobCounts('completed')).completed).toBe(12);
    } finally {
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 90_000);

  it('moves the window past a shard that fails for good: the others commit, the run is partial and names it', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    // shard 3 cannot be read, and no retry would mend it
    const poisoned = npyWith((source) => ({
      read(shard: ShardSpec, hint?: ReadHint) {
        if (shard.index === 3) throw new LayertapError('shard 3 is unreadable', false);
        return source.read(shard, hint);
      },
    }));
    const registries = { ...defaultRegistries(), sources: defaultSources().with('npy', poisoned) };
    const job = { ...(await npyJob(join(tmp.dir, 'x.npy'), join(tmp.dir, 'out-poison'), 3)), onShardFailure: 'partial' as const };
    const client = new LayertapClient(settings, { window: 2, registries });
    const worker = new LayertapWorker({ settings, threads: 1, concurrency: 1, registries, log: () => undefined });
    try {
      const rec = await client.enqueue(job);
      expect(rec.shards).toBe(8);
      await worker.start();
      const s = await waitForFinal(client, rec.runId, 60_000);
      expect(s.status).toBe('partial');
      expect(s.failedShards).toEqual([3]);
      expect(s.rows).toBe(20);
      const m = await readManifest(s.output.uri);
      expect(m.failedShards).toEqual([{ index: 3, error: 'shard 3 is unreadable', start: 9, rows: 3 }]);
      expect((m.shards as Array<{ index: number }>).map((x) => x.index)).toEqual([0, 1, 2, 4, 5, 6, 7]);
    } finally {
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 90_000);

  it('keeps every key of a run under a hash-tagged prefix in one Redis Cluster slot', async () => {
    const tag = `lt-test-${Math.random().toString(16).slice(2, 10)}`;
    const prefix = `{${tag}}`;
    prefixes.push(async () => {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
    });
    const settings = { redisUrl: REDIS_URL, prefix };
    const client = new LayertapClient(settings, { window: 2 });
    const worker = new LayertapWorker({ settings, threads: 1, log: () => undefined });
    try {
      const rec = await client.enqueue(await npyJob(join(tmp.dir, 'x.npy'), join(tmp.dir, 'out-tagged'), 5, 'tagged'));
      await worker.start();
      expect((await waitForFinal(client, rec.runId, 60_000)).status).toBe('committed');
      const keys = await redis.keys('*');
      const ours = keys.filter((k) => k.includes(tag));
      expect(ours.length).toBeGreaterThan(5);
      // Redis Cluster hashes only what is between the first '{' and the next '}'
      expect(ours.filter((k) => !k.startsWith(`${prefix}:`))).toEqual([]);
      expect(ours.some((k) => k.includes(':layertap:run:'))).toBe(true);
    } finally {
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 90_000);

  it('takes at most 300 bytes of Redis per shard of a .npy, and an image folder its plan files, not Redis', async () => {
    const prefix = newPrefix();
    const client = new LayertapClient({ redisUrl: REDIS_URL, prefix });
    try {
      // 2,300 shards of one row: the window's 256 jobs and the range list
      const npy = await client.enqueue(await npyJob(join(tmp.dir, 'x.npy'), join(tmp.dir, 'out-bytes'), 1, 'bytes-a'));
      const big = join(tmp.dir, 'big.npy');
      await writeRows(big, 2300);
      const before = await bytesUnder(redis, prefix);
      const rec = await client.enqueue(await npyJob(big, join(tmp.dir, 'out-bytes'), 1, 'bytes-b'));
      const perShard = ((await bytesUnder(redis, prefix)) - before) / rec.shards;
      expect(rec.shards).toBe(2300);
      expect(npy.shards).toBe(23);
      expect(perShard).toBeLessThan(300);

      // 1,500 files in 15 folders, 10 per shard: ids go to _plan/, in code-point order
      const root = join(tmp.dir, 'imgs');
      for (let d = 0; d < 15; d++) {
        await mkdir(join(root, `d${d}`), { recursive: true });
        for (let f = 0; f < 100; f++) await writeFile(join(root, `d${d}`, `f${String(f).padStart(3, '0')}.jpg`), '');
      }
      const imgJob = (shardSize: number) =>
        resolveJob(
          parseJob({
            name: `imgs${shardSize}`,
            source: { uri: root },
            model: { uri: SEED_MODEL },
            taps: [{ layer: 'linear_1.1' }],
            shardSize,
            sink: { uri: join(tmp.dir, 'out-bytes') },
          }),
        );
      // shards of 500 rows (as of 1000 in a real run): the bound is per shard plus per row
      const b2 = await bytesUnder(redis, prefix);
      const wide = await client.enqueue(await imgJob(500));
      const grown = (await bytesUnder(redis, prefix)) - b2;
      expect(wide.shards).toBe(3);
      expect(grown).toBeLessThan(300 * 3 + 8 * 1500);
      const irec = await client.enqueue(await imgJob(10));
      expect(irec.shards).toBe(150);
      const plan = await readdir(join(irec.outputUri, '_plan'));
      expect(plan).toEqual(['ids-00000.arrow', 'ids-00001.arrow', 'ids-00002.arrow']);
      const ids = tableFromIPC(await readFile(join(irec.outputUri, '_plan', 'ids-00000.arrow')))
        .getChild('id')!
        .toArray() as string[];
      expect(ids).toHaveLength(640);
      expect(ids.slice(0, 2)).toEqual(['d0/f000.jpg', 'd0/f001.jpg']);
      // code-point order: d1 < d10 < d11 ... < d2
      expect(ids[100]).toBe('d1/f000.jpg');
      expect(ids[200]).toBe('d10/f000.jpg');
    } finally {
      await client.close();
    }
  }, 90_000);

  it('cancel removes the pending shards, lets the active one finish, and writes _CANCELLED', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const job = await npyJob(join(tmp.dir, 'x.npy'), join(tmp.dir, 'out-cancel'), 1);
    const client = new LayertapClient(settings, { window: 5 });
    let committed = 0;
    let cancelled: Promise<unknown> | null = null;
    const worker = new LayertapWorker({
      settings,
      threads: 1,
      concurrency: 1,
      log: () => undefined,
      onShard: (origin) => {
        if (++committed === 2) cancelled = client.cancel(origin.runId);
      },
    });
    try {
      const rec = await client.enqueue(job);
      expect(rec.shards).toBe(23);
      await worker.start();
      const s = await waitForFinal(client, rec.runId, 60_000);
      await cancelled;
      expect(s.status).toBe('cancelled');
      // the run is cancelling at once; it is finalized, cancelled, when its active shard is done
      const end = Date.now() + 30_000;
      while ((await client.registry.get(rec.runId))?.finishedAt === undefined && Date.now() < end) await sleep(50);
      const m = await readManifest(s.output.uri);
      expect(m.status).toBe('cancelled');
      expect(m.plannedShards).toBe(23);
      const done = (m.shards as unknown[]).length;
      // the two committed before the cancel, and at most the one active then
      expect(done).toBeGreaterThanOrEqual(2);
      expect(done).toBeLessThanOrEqual(4);
      expect(existsSync(join(s.output.uri, '_CANCELLED'))).toBe(true);
      expect(existsSync(join(s.output.uri, '_SUCCESS'))).toBe(false);
      expect(await client.shards.getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 });
      const listed = (await client.registry.list()).find((r) => r.runId === rec.runId);
      expect(listed?.status).toBe('cancelled');
      expect(listed?.error).toBe(`cancelled: ${done} of 23 shard(s) committed`);
      // done is what committed; the shards that never ran are cancelled, not failed
      const final = await client.status(rec.runId);
      expect(final?.shards).toEqual({ total: 23, done, failed: 0, cancelled: 23 - done });
      expect(m.failedShards).toEqual([]);
      expect(m.cancelledShards).toBe(23 - done);
      expect(await endedRunLeftovers(redis, prefix, rec.runId)).toEqual([]);
      // cancelling a finished run changes nothing
      expect((await client.cancel(rec.runId))?.status).toBe('cancelled');
      expect(await client.cancel('20261127T000000-000000')).toBeNull();
    } finally {
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 90_000);

  it('cancel of a run still planning stops its enqueuer within a second: it says so, nothing is queued, a manifest and _CANCELLED record it', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    // a listing that takes 20 ms per shard, as a slow file system or object store would: 200 shards take 4 s
    const slow = slowNpy(20);
    // the default planning timeout (60 s): the cancel must not wait for the enqueuer's heartbeat
    const client = new LayertapClient(settings, { registries: { ...defaultRegistries(), sources: defaultSources().with('npy', slow.entry) } });
    try {
      await writeRows(join(tmp.dir, 'x200.npy'), 200);
      const job = await npyJob(join(tmp.dir, 'x200.npy'), join(tmp.dir, 'out-plan-cancel'), 1);
      const runId = '20261129T120000-cace11';
      const enqueued = client.enqueue(job, { runId });
      enqueued.catch(() => undefined);
      while ((await client.registry.get(runId))?.status !== 'planning' || slow.planned() < 5) await sleep(10);
      const asked = Date.now();
      const c = await client.cancel(runId);
      expect(c?.status).toBe('cancelling');
      const err = await enqueued.then(
        () => null,
        (e: unknown) => e,
      );
      const stoppedMs = Date.now() - asked;
      expect(err).toBeInstanceOf(RunCancelledError);
      expect((err as Error).message).toBe(`run ${runId} was cancelled while planning; nothing was queued`);
      expect(slow.planned()).toBeLessThan(100);
      const rec = (await client.registry.get(runId))!;
      expect(rec.status).toBe('cancelled');
      expect(rec.error).toMatch(/^cancelled while planning \(\d+ shard\(s\) planned\)$/);
      expect((await client.status(runId))?.status).toBe('cancelled');
      expect(await Job.fromId(client.runs, runId)).toBeUndefined();
      expect(await client.shards.count()).toBe(0);
      expect(existsSync(join(rec.outputUri, '_CANCELLED'))).toBe(true);
      const m = await readManifest(rec.outputUri);
      expect(m.status).toBe('cancelled');
      expect(m.error).toBe('cancelled while planning');
      expect(await endedRunLeftovers(redis, prefix, runId)).toEqual([]);
      console.log(`[lifecycle] cancel while planning: enqueuer stopped ${stoppedMs} ms after the cancel, after ${slow.planned()} of 200 shards`);
    } finally {
      await client.close();
    }
  }, 60_000);

  it('marks a run failed when its enqueuer is killed while planning; nothing of it is queued', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const job: ResolvedJob = await npyJob(join(tmp.dir, 'x.npy'), join(tmp.dir, 'out-killed'), 1);
    const jobFile = join(tmp.dir, 'job.json');
    await writeFile(jobFile, JSON.stringify(job));
    const runId = '20261129T120000-dead01';
    const proc = spawn(process.execPath, [join(ROOT, 'test/fixtures/scale/stuck-enqueuer.mjs'), jobFile, REDIS_URL, prefix, runId], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const client = new LayertapClient(settings);
    const worker = new LayertapWorker({ settings, threads: 1, planningSweepMs: 200, log: () => undefined });
    try {
      await new Promise<void>((resolve, reject) => {
        proc.stdout.on('data', (b: Buffer) => b.toString().includes('planning') && resolve());
        proc.on('exit', (code) => reject(new Error(`enqueuer exited with ${code} before planning`)));
      });
      expect((await client.registry.get(runId))?.status).toBe('planning');
      proc.kill('SIGKILL');
      await worker.start();
      const end = Date.now() + 20_000;
      while ((await client.registry.get(runId))?.status === 'planning' && Date.now() < end) await sleep(100);
      const rec = await client.registry.get(runId);
      expect(rec?.status).toBe('failed');
      expect(rec?.error).toBe(ABANDONED_PLAN);
      expect((await client.status(runId))?.status).toBe('failed');
      expect(await Job.fromId(client.runs, runId)).toBeUndefined();
      expect(await client.shards.count()).toBe(0);
      expect(await redis.exists(`${prefix}:layertap:run:${runId}:ranges`)).toBe(0);
      expect(await redis.smembers(`${prefix}:layertap:planning`)).toEqual([]);
      // the run's spec was stored when planning began: its end is recorded in a manifest too
      const m = await readManifest(rec!.outputUri);
      expect(m.status).toBe('failed');
      expect(m.error).toBe(ABANDONED_PLAN);
      expect(await endedRunLeftovers(redis, prefix, runId)).toEqual([]);
    } finally {
      proc.kill('SIGKILL');
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 60_000);
});
