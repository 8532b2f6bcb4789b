import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayertapClient } from '../../src/queue/client.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { readManifest, waitForFinal, writeRows } from '../integration/reliability-harness.js';

describe('layertap plan and layertap cancel', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  let jobFile: string;

  beforeAll(async () => {
    tmp = await tempDir();
    await writeRows(join(tmp.dir, 'x.npy'), 10);
    jobFile = join(tmp.dir, 'job.json');
    await writeFile(
      jobFile,
      JSON.stringify({
        name: 'sized',
        source: { uri: join(tmp.dir, 'x.npy') },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_1.1' }, { layer: 'linear_class.0', dtype: 'float16' }],
        shardSize: 3,
        sink: { uri: join(tmp.dir, 'out') },
      }),
    );
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('plan sizes a run without Redis: rows, shards, bytes per tap, Redis bytes, duration per worker count', async () => {
    // a Redis URL where nothing answers: plan must not need one
    const r = await runCli(['plan', jobFile, '--json', '--rows-per-sec', '50', '--workers', '1,5'], { REDIS_URL: 'redis://127.0.0.1:9' });
    expect(r.code, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout);
    expect(e.rows).toBe(10);
    expect(e.shards).toBe(4);
    expect(e.planFiles).toBe(0);
    expect(e.taps).toEqual([
      { as: 'linear_1_1', shape: [64], layout: 'nhwc', shapeFrom: 'model', bytesPerRow: 256, bytes: 2560 },
      { as: 'linear_class_0', shape: [5], layout: 'nhwc', shapeFrom: 'model', bytesPerRow: 10, bytes: 100 },
    ]);
    expect(e.bytes).toBe(2660);
    expect(e.shapesFrom).toBe('model');
    expect(e.tokensPerRow).toBeNull();
    expect(e.redis.atEnqueue).toBeGreaterThan(4 * 24);
    expect(e.redis.peak).toBeGreaterThan(e.redis.atEnqueue);
    expect(e.rowsPerSecFrom).toBe('--rows-per-sec');
    // 4 shards of at most 3 rows: a fifth worker has nothing to do, and a shard takes 3 / 50 s
    expect(e.duration).toEqual([
      { workers: 1, busy: 1, seconds: 0.2 },
      { workers: 5, busy: 4, seconds: 0.06 },
    ]);

    const text = await runCli(['plan', jobFile], { REDIS_URL: 'redis://127.0.0.1:9' });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('shards      4 of 3 rows');
    expect(text.stdout).toMatch(/^ {4}linear_1_1 +\[64\] +nhwc +256 +2\.6 KB$/m);
    expect(text.stdout).toContain('duration    unknown: give --rows-per-sec, or commit a run of this fingerprint first');

    const bad = await runCli(['plan', jobFile, '--rows-per-sec', '-3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--rows-per-sec must be a positive number');
  }, 60_000);

  it('plan takes throughput from the newest committed run of the fingerprint, shapes from the model', async () => {
    const settings = { redisUrl: REDIS_URL, prefix };
    const client = new LayertapClient(settings);
    const worker = new LayertapWorker({ settings, threads: 1, log: () => undefined });
    try {
      await worker.start();
      const { resolveJob } = await import('../../src/pipeline/plan.js');
      const { loadJobFile } = await import('../../src/config/load.js');
      const rec = await client.enqueue(await resolveJob(await loadJobFile(jobFile)));
      expect((await waitForFinal(client, rec.runId, 60_000)).status).toBe('committed');
      const r = await runCli(['plan', jobFile, '--json', '--workers', '2'], { REDIS_URL: 'redis://127.0.0.1:9' });
      expect(r.code, r.stderr).toBe(0);
      const e = JSON.parse(r.stdout);
      expect(e.shapesFrom).toBe('model');
      expect(e.rowsPerSecFrom).toBe(`run ${rec.runId}`);
      const m = await readManifest(rec.outputUri);
      expect(e.rowsPerSec).toBeCloseTo(m.rows / (m.seconds as number), 6);
      expect(e.duration).toHaveLength(1);
      expect(e.duration[0].workers).toBe(2);
    } finally {
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 90_000);

  it('cancel: a queued run is cancelling (exit 0) and finalized as cancelled by the next worker; cancelling again says so; an unknown run is exit 1', async () => {
    const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };
    const enq = await runCli(['enqueue', jobFile, '--json'], env);
    expect(enq.code, enq.stderr).toBe(0);
    const { runId } = JSON.parse(enq.stdout);
    const c = await runCli(['cancel', runId, '--json'], env);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toContain(`run ${runId} cancelling: pending shards removed; active shards finish, then `);
    expect(JSON.parse(c.stdout)).toEqual({
      runId,
      status: 'cancelling',
      cancelled: true,
      output: { uri: expect.stringMatching(new RegExp(`^${join(tmp.dir, 'out', 'sized')}/[0-9a-f]{16}/${runId}$`)) },
    });
    // no worker ran: every pending shard is gone, and the first worker to come finalizes it as cancelled
    const settings = { redisUrl: REDIS_URL, prefix };
    const client = new LayertapClient(settings);
    const worker = new LayertapWorker({ settings, threads: 1, log: () => undefined });
    try {
      expect(await client.shards.getJobCounts('waiting', 'active')).toEqual({ waiting: 0, active: 0 });
      await worker.start();
      const s = await waitForFinal(client, runId, 30_000);
      expect(s.status).toBe('cancelled');
      // no shard ran: none is done or failed, every one is cancelled
      expect(s.shards).toEqual({ total: s.shards.total, done: 0, failed: 0, cancelled: s.shards.total });
      expect(s.shards.total).toBeGreaterThan(0);
      for (let i = 0; i < 50 && !existsSync(join(s.output.uri, '_CANCELLED')); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(join(s.output.uri, '_CANCELLED'))).toBe(true);
      expect((await readManifest(s.output.uri)).status).toBe('cancelled');
    } finally {
      await worker.close({ graceMs: 0 });
      await client.close();
    }
    const again = await runCli(['cancel', runId], env);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`run ${runId} was already cancelled`);
    const unknown = await runCli(['cancel', '20261127T000000-000000'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe("layertap: no run with id '20261127T000000-000000'");
  }, 90_000);
});
