import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { REDIS_URL, SEED, SEED_MODEL, testPrefix } from '../helpers/index.js';
import { startS3Server, testBucket, type S3TestServer } from '../helpers/s3.js';

// An S3-compatible store named only in the job file (no AWS_ENDPOINT_URL* in the environment):
// the incremental look-up for a base run must go to that endpoint, as the parts do.
describe('incremental runs into an S3 sink whose endpoint is in the job file', () => {
  let s3: S3TestServer;
  const out = testBucket('inc');
  const { prefix, cleanup } = testPrefix();
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    for (const k of ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3']) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
    s3 = await startS3Server([out]);
  });
  afterAll(async () => {
    await cleanup();
    await s3?.close();
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  });

  const job = () =>
    parseJob({
      name: 'incs3',
      source: { uri: join(SEED, 'input_nhwc.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_1.1', as: 'feat' }],
      batchSize: 2,
      shardSize: 2,
      incremental: true,
      sink: { uri: `s3://${out}/emb`, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true },
    });

  it('commits the first run and carries every row over in the second', async () => {
    const settings = { redisUrl: REDIS_URL, prefix };
    const first = await runJob(job(), { settings, threads: 1 });
    expect(first.error).toBeUndefined();
    expect(first.status).toBe('committed');
    const rows = first.totalRows;
    expect(rows).toBeGreaterThan(0);
    expect(first.rows).toBe(rows);

    const second = await runJob(job(), { settings, threads: 1 });
    expect(second.error).toBeUndefined();
    expect(second.status).toBe('committed');
    expect(second.rows).toBe(rows);
    const key = `emb/incs3/${second.fingerprint}/${second.runId}/_manifest.json`;
    const manifest = JSON.parse(Buffer.from(await s3.get(out, key)).toString('utf8')) as {
      incremental?: { baseRunId: string | null; carriedRows: number; embeddedRows: number };
    };
    expect(manifest.incremental).toEqual({ baseRunId: first.runId, carriedRows: rows, embeddedRows: 0 });
  });
});
