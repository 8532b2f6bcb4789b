import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/index.js';
import { startS3Server, testBucket, type S3TestServer } from '../helpers/s3.js';
import { seeded, writeRun } from '../helpers/search-runs.js';

// `neighbours` on a run in S3-compatible storage, named by its s3:// output uri: the scan
// threads read the part files from the bucket themselves.
describe('search on a run in S3', () => {
  let s3: S3TestServer;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const bucket = testBucket('search');
  const n = 900;
  const dim = 6;
  const rand = seeded(3);
  const vectors = Float32Array.from({ length: n * dim }, () => rand() - 0.5);
  const ids = Array.from({ length: n }, (_, i) => `r${i}`);
  let uri = '';

  beforeAll(async () => {
    s3 = await startS3Server([bucket]);
    tmp = await tempDir();
    const dir = await writeRun({ root: tmp.dir, ids, vectors, dim, carried: { text: ids.map((id) => `about ${id}`) }, shardSize: 400 });
    const rel = dir.slice(tmp.dir.length + 1);
    for (const f of await readdir(dir)) await s3.put(bucket, `emb/${rel}/${f}`, await readFile(join(dir, f)));
    uri = `s3://${bucket}/emb/${rel}`;
  });
  afterAll(async () => {
    await s3?.close();
    await tmp?.remove();
  });

  it('lists the exact nearest rows of a row, read from the bucket', async () => {
    const env = {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
    };
    const r = await runCli(['neighbours', uri, 'r10', '-k', '4', '--json'], env, 60_000);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { text: string; neighbours: Array<{ id: string; score: number; text: string }> };
    const cos = (i: number, j: number) => {
      let d = 0;
      let a = 0;
      let b = 0;
      for (let t = 0; t < dim; t++) {
        d += vectors[i * dim + t]! * vectors[j * dim + t]!;
        a += vectors[i * dim + t]! ** 2;
        b += vectors[j * dim + t]! ** 2;
      }
      return d / Math.sqrt(a * b);
    };
    const want = ids
      .map((id, j) => ({ id, s: cos(10, j) }))
      .filter((e) => e.id !== 'r10')
      .sort((a, b) => b.s - a.s)
      .slice(0, 4);
    expect(got.text).toBe('about r10');
    expect(got.neighbours.map((h) => h.id)).toEqual(want.map((w) => w.id));
    got.neighbours.forEach((h, i) => expect(Math.abs(h.score - want[i]!.s)).toBeLessThan(1e-5));

    const none = await runCli(['neighbours', `s3://${bucket}/emb/nothing`, 'r1'], env, 60_000);
    expect({ code: none.code, stderr: none.stderr }).toEqual({
      code: 2,
      stderr: `layertap: s3://${bucket}/emb/nothing has no committed run (no _SUCCESS nor _manifest.json)\n`,
    });
  }, 60_000);
});
