import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient } from '../../src/queue/client.js';
import type { RunSummary } from '../../src/queue/types.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { startS3Server, testBucket, type S3TestServer } from '../helpers/s3.js';
import { sleep, waitForFinal, writeRows } from './reliability-harness.js';

/** How long the store stays down in the shard test; LAYERTAP_OUTAGE_S=120 measures a 2-minute outage. */
const OUTAGE_S = Number(process.env.LAYERTAP_OUTAGE_S ?? 15);

// The object store goes down mid-run (it stops listening and drops its connections; what it
// stored stays) and comes back on the same port over the same folder: an outage of the store,
// not a fault of the shards. The run must wait for it without spending attempts and commit
// exactly once; a finalizer that meets the outage must not leave a broken run behind.
describe('storage outages', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let s3: S3TestServer;
  const bucket = testBucket('outage');
  const prefixes: Array<() => Promise<void>> = [];
  const newPrefix = () => {
    const p = testPrefix();
    prefixes.push(p.cleanup);
    return p.prefix;
  };

  beforeAll(async () => {
    tmp = await tempDir('layertap-outage-');
    s3 = await startS3Server([bucket]);
    await writeRows(join(tmp.dir, 'rows.npy'), 8000);
  });
  afterAll(async () => {
    for (const c of prefixes) await c();
    await s3?.close();
    await tmp?.remove();
  });

  const job = (name: string, shardSize: number) =>
    resolveJob(
      parseJob({
        name,
        source: { uri: join(tmp.dir, 'rows.npy') },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
        batchSize: 32,
        shardSize,
        sink: { uri: `s3://${bucket}/out`, endpoint: s3.endpoint },
      }),
    );

  /** Ids in the run's part files, read back from the store, with how often each appears. */
  async function partIds(prefix: string): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    for (const key of (await s3.keys(bucket, prefix)).filter((k) => /\/part-\d+\.arrow$/.test(k))) {
      const t = tableFromIPC(await s3.get(bucket, key));
      for (const id of t.getChild('id')!) ids.set(String(id), (ids.get(String(id)) ?? 0) + 1);
    }
    return ids;
  }

  it(
    `rides out a ${OUTAGE_S} s outage of the store mid-run without spending attempts, says so, and commits every row once`,
    async () => {
      const prefix = newPrefix();
      const settings = { redisUrl: REDIS_URL, prefix };
      const lines: string[] = [];
      const client = new LayertapClient(settings);
      const worker = new LayertapWorker({ settings, threads: 1, concurrency: 2, storageOutageMs: (OUTAGE_S + 60) * 1000, log: (l) => lines.push(l) });
      try {
        await worker.start();
        const rec = await client.enqueue(await job('outage', 500));
        expect(rec.shards).toBe(16);
        const runKey = `out/outage/${rec.fingerprint}/${rec.runId}/`;
        while ((await s3.keys(bucket, runKey)).filter((k) => /part-\d+\.arrow$/.test(k)).length < 2) await sleep(20);
        await s3.down();
        const downAt = Date.now();
        // status says the run waits for its storage, and since when
        let seen: RunSummary | null = null;
        while (Date.now() - downAt < OUTAGE_S * 1000) {
          const s = await client.status(rec.runId);
          if (s?.storageOutage && !seen) seen = s;
          await sleep(250);
        }
        expect(seen?.storageOutage?.since).toBeGreaterThanOrEqual(downAt - 1000);
        expect(seen?.status).toBe('running');
        await s3.up();
        const upAt = Date.now();
        const final = await waitForFinal(client, rec.runId, 120_000);
        const resumedMs = Date.now() - upAt;
        expect(final.status, JSON.stringify(final)).toBe('committed');
        expect(final.shards).toEqual({ total: 16, done: 16, failed: 0, cancelled: 0 });
        expect(final.storageOutage).toBeUndefined();
        const ids = await partIds(runKey);
        expect(ids.size).toBe(8000);
        expect([...ids.values()].every((n) => n === 1)).toBe(true);
        expect(await s3.pendingUploads(bucket)).toEqual([]);
        // one line when the outage began, one when it ended; no shard attempt failed
        expect(lines.filter((l) => l.includes('storage unreachable ('))).toHaveLength(1);
        expect(lines.filter((l) => l.includes('storage answers again after'))).toHaveLength(1);
        expect(lines.filter((l) => / attempt \d+\/\d+ failed/.test(l))).toEqual([]);
        console.log(
          `[reliability] storage outage of ${OUTAGE_S} s mid-run: committed 8000/8000 rows once; run ended ${(resumedMs / 1000).toFixed(1)} s after the store was back`,
        );
      } finally {
        await worker.close({ graceMs: 0 });
        await client.close();
      }
    },
    240_000 + OUTAGE_S * 1000,
  );

  it('ends a run whose finalizer meets a long outage failed, with the reason, and finishes it once the store is back', async () => {
    const prefix = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const lines: string[] = [];
    const client = new LayertapClient(settings);
    let committed = 0;
    const worker = new LayertapWorker({
      settings,
      threads: 1,
      concurrency: 1,
      // short: the finalizer's wait runs out during the test
      storageOutageMs: 3000,
      planningSweepMs: 500,
      log: (l) => lines.push(l),
      // the store goes down as the last shard commits, before the finalizer starts
      onShard: () => {
        if (++committed === 4) void s3.down();
      },
    });
    try {
      await worker.start();
      const rec = await client.enqueue(await job('finalize-outage', 2000));
      expect(rec.shards).toBe(4);
      const failed = await waitForFinal(client, rec.runId, 120_000);
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatch(/^the run could not be finalized: /);
      expect(failed.shards).toEqual({ total: 4, done: 4, failed: 0, cancelled: 0 });
      expect((await client.registry.get(rec.runId))?.unfinalized).toBe(true);
      expect(lines.some((l) => /finalize attempt \d+\/5 failed: .*; the run ends failed$/.test(l))).toBe(true);
      // by hand while the store is still down: the storage's error, nothing changes
      await expect(client.finalize(rec.runId)).rejects.toThrow(/ECONNREFUSED|connect|socket/i);
      await s3.up();
      // the worker's sweep finishes it
      const end = Date.now() + 30_000;
      while ((await client.registry.get(rec.runId))?.status !== 'committed' && Date.now() < end) await sleep(200);
      const done = await client.status(rec.runId);
      expect(done?.status).toBe('committed');
      expect(done?.rows).toBe(8000);
      const runKey = `out/finalize-outage/${rec.fingerprint}/${rec.runId}/`;
      const keys = await s3.keys(bucket, runKey);
      expect(keys).toContain(`${runKey}_SUCCESS`);
      expect(keys).toContain(`${runKey}_manifest.json`);
      expect(JSON.parse(Buffer.from(await s3.get(bucket, `${runKey}_manifest.json`)).toString('utf8')).status).toBe('committed');
      expect(await s3.pendingUploads(bucket)).toEqual([]);
      expect(lines.some((l) => l.includes(`run ${rec.runId} finalized now that its storage answers: committed`))).toBe(true);
    } finally {
      await s3.up();
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 180_000);
});
