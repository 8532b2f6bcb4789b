import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient, LayertapWorker, waitForRun } from '../../src/queue/index.js';
import { writeNpy } from '../../src/sources/npy.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

// Run dedup hands back an active run only for a job that would write the same output: a job
// that differs in anything that changes what is written, or where, is a run of its own.
describe('run dedup covers the sink', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };
  let client: LayertapClient;

  const job = (format: 'arrow' | 'parquet') =>
    parseJob({
      name: 'dedup',
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
      new Float32Array(6 * 28 * 28).map((_, i) => (i % 11) / 11),
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

  it('gives a Parquet job its own run while the same job writing Arrow is active', async () => {
    const arrow = await client.enqueue(await resolveJob(job('arrow')));
    const parquet = await client.enqueue(await resolveJob(job('parquet')));
    expect(parquet.deduplicated).toBeUndefined();
    expect(parquet.runId).not.toBe(arrow.runId);
    // the same Parquet job again is still handed the active Parquet run
    const again = await client.enqueue(await resolveJob(job('parquet')));
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
