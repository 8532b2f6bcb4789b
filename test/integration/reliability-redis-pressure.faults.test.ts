import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { defaultRegistries, defaultSources } from '../../src/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient } from '../../src/queue/client.js';
import { RedisFullError, RedisLostPlanError } from '../../src/queue/redis-memory.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { runCli } from '../helpers/cli.js';
import { SEED_MODEL, tempDir } from '../helpers/index.js';
import { scanKeys } from '../helpers/redis-keys.js';
import { slowNpy, writeSparseNpy } from '../helpers/sources.js';
import { sleep, TestRedis, writeRows } from './reliability-harness.js';

// Redis under pressure, each on a redis-server of the test's own: too little memory for a run,
// memory that runs out while a run is planned, and a restart without persistence while a run is
// planned. Each must end in one clear line and leave nothing of the run behind.
describe('Redis under pressure', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const servers: TestRedis[] = [];

  beforeAll(async () => {
    tmp = await tempDir('layertap-pressure-');
    await writeRows(join(tmp.dir, 'rows.npy'), 200);
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await tmp?.remove();
  });

  const job = (uri: string, shardSize: number) =>
    parseJob({
      name: 'pressure',
      source: { uri },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_1.1' }],
      batchSize: 4,
      shardSize,
      sink: { uri: join(tmp.dir, 'out') },
    });

  it('refuses a run that cannot fit in Redis with exit 2 and the figures, before writing anything', async () => {
    const redis = await TestRedis.start(join(tmp.dir, 'small'), ['--maxmemory', '20mb', '--appendonly', 'no']);
    servers.push(redis);
    await writeSparseNpy(join(tmp.dir, 'two-million.npy'), 2_000_000, [28, 28, 1]);
    const file = join(tmp.dir, 'big.json');
    await writeFile(file, JSON.stringify(job(join(tmp.dir, 'two-million.npy'), 1)));
    const r = await runCli(['enqueue', file], { REDIS_URL: redis.url, LAYERTAP_PREFIX: 'p1' });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n').pop()).toMatch(
      /^layertap: shardSize: the run needs about \d+\.\d MB of Redis \(2000000 shards\), but Redis has \d+\.\d MB free \(\d+\.\d MB used of maxmemory 21\.0 MB\); raise shardSize \(fewer, larger shards\) or Redis's maxmemory$/,
    );
    const c = new Redis(redis.url);
    try {
      // BullMQ's queue metadata aside, no key: nothing of the run
      expect(await scanKeys(c, 'p1:layertap:*')).toEqual([]);
    } finally {
      c.disconnect();
    }
  }, 60_000);

  it('says Redis is out of memory in one line when it fills up while a run is planned, cleans up on the full Redis, and a worker against it logs a few lines, not one per try', async () => {
    const redis = await TestRedis.start(join(tmp.dir, 'fills'), ['--maxmemory', '20mb', '--appendonly', 'no']);
    servers.push(redis);
    const settings = { redisUrl: redis.url, prefix: 'p2' };
    const slow = slowNpy(10);
    const client = new LayertapClient(settings, { registries: { ...defaultRegistries(), sources: defaultSources().with('npy', slow.entry) } });
    const filler = new Redis(redis.url);
    try {
      const runId = '20261206T130000-f111ed';
      const enqueued = client.enqueue(await resolveJob(job(join(tmp.dir, 'rows.npy'), 1)), { runId });
      enqueued.catch(() => undefined);
      while (slow.planned() < 5) await sleep(10);
      // someone else fills Redis past its limit while the plan goes on
      // (in pieces, smaller and smaller: Redis counts a command's own bytes against the limit before it runs it)
      let k = 0;
      for (const size of [1024 * 1024, 64 * 1024, 4096, 256, 16]) {
        for (;;) {
          const ok = await filler.set(`someone-else:${k++}`, Buffer.alloc(size, 1)).then(
            () => true,
            () => false,
          );
          if (!ok) break;
        }
      }
      const err = await enqueued.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RedisFullError);
      expect((err as Error).message).toMatch(
        /^Redis is out of memory \(\d+\.\d MB used of maxmemory 21\.0 MB\); free some \(finished runs expire on their own\) or raise maxmemory$/,
      );
      // nothing of the run is left, although Redis refuses every write
      expect((await scanKeys(filler, 'p2:*')).filter((k) => k.includes(runId))).toEqual([]);
      expect(await filler.smembers('p2:layertap:planning')).toEqual([]);
      // a worker against the full Redis: each refusal is said once per few seconds
      const lines: string[] = [];
      const worker = new LayertapWorker({ settings, threads: 1, log: (l) => lines.push(l) });
      await worker.start().catch((e: unknown) => lines.push(String(e)));
      await client.enqueue(await resolveJob(job(join(tmp.dir, 'rows.npy'), 50))).catch((e: unknown) => lines.push(`enqueue: ${(e as Error).message}`));
      await sleep(3000);
      await worker.close({ graceMs: 0 });
      expect(lines.length).toBeLessThan(20);
      console.log(`[reliability] a worker against a full Redis for 3 s: ${lines.length} log lines`);
    } finally {
      for (const k of await scanKeys(filler, 'someone-else:*')) await filler.del(k);
      filler.disconnect();
      await client.close();
    }
  }, 60_000);

  it('notices a Redis that restarted without persistence while a run was planned: one line, non-zero, nothing left', async () => {
    const redis = await TestRedis.start(join(tmp.dir, 'volatile'), ['--appendonly', 'no']);
    servers.push(redis);
    const settings = { redisUrl: redis.url, prefix: 'p3' };
    const slow = slowNpy(10);
    const client = new LayertapClient(settings, { registries: { ...defaultRegistries(), sources: defaultSources().with('npy', slow.entry) } });
    try {
      const runId = '20261206T130000-105700';
      const enqueued = client.enqueue(await resolveJob(job(join(tmp.dir, 'rows.npy'), 1)), { runId });
      enqueued.catch(() => undefined);
      while (slow.planned() < 5) await sleep(10);
      await redis.restart();
      const err = await enqueued.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RedisLostPlanError);
      expect((err as Error).message).toBe(
        `Redis lost the plan of run ${runId} while it was enqueued (it restarted without persistence?): nothing was queued; enqueue the job again, and run Redis with appendonly yes so that a restart keeps what it acknowledged`,
      );
      expect(await client.status(runId)).toBeNull();
      const c = new Redis(redis.url);
      try {
        expect((await scanKeys(c, 'p3:*')).filter((k) => k.includes(runId) || k.includes(':active:'))).toEqual([]);
      } finally {
        c.disconnect();
      }
    } finally {
      await client.close();
    }
  }, 60_000);
});
