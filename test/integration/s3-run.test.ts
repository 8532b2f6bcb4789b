import { tableFromIPC } from 'apache-arrow';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobConfigError, parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { loadRunner, singleFloatInput } from '../../src/models/index.js';
import { runJob } from '../../src/queue/index.js';
import { decodeImage } from '../../src/preprocess/image-decode.js';
import { runCli } from '../helpers/cli.js';
import { featureRows, maxAbsDiff, REDIS_URL, SEED_MODEL, testPrefix } from '../helpers/index.js';
import { startS3Server, testBucket, type S3TestServer } from '../helpers/s3.js';

/** A 28x28 grayscale picture, different for every `seed`. */
async function picture(seed: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  const raw = Buffer.alloc(28 * 28);
  for (let p = 0; p < raw.length; p++) raw[p] = (p * (seed + 3) + seed * 37) % 256;
  const img = sharp(raw, { raw: { width: 28, height: 28, channels: 1 } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

// Images under an S3 prefix (keys with spaces, unicode, '+' and '#'), embedded through the queue
// and the pool, written as parts to another bucket, read back from S3.
describe('a run from an S3 image prefix to an S3 sink', () => {
  let s3: S3TestServer;
  const src = testBucket('src');
  const out = testBucket('out');
  const { prefix, cleanup } = testPrefix();
  const images = new Map<string, Buffer>();

  beforeAll(async () => {
    s3 = await startS3Server([src, out]);
    images.set('a.png', await picture(1, 'png'));
    images.set('b.jpg', await picture(2, 'jpeg'));
    images.set('c dir/space name.png', await picture(3, 'png'));
    images.set('c dir/plus+hash#.png', await picture(4, 'png'));
    images.set('dup-of-a.png', images.get('a.png')!);
    images.set('ü/名前.jpeg', await picture(5, 'jpeg'));
    images.set('z-broken.png', Buffer.from('\x89PNG\r\n\x1a\n not a png at all'));
    for (const [rel, bytes] of images) await s3.put(src, `images/${rel}`, bytes);
    // not images of this dataset: another extension, a hidden folder, a folder marker, look-alike prefixes
    await s3.put(src, 'images/notes.txt', 'not an image');
    await s3.put(src, 'images/.hidden/x.png', images.get('a.png')!);
    await s3.put(src, 'images/empty-folder/', '');
    await s3.put(src, 'images-other/x.png', images.get('a.png')!);
    await s3.put(src, 'other/y.png', images.get('a.png')!);
  });
  afterAll(async () => {
    await cleanup();
    await s3?.close();
  });

  const job = (overrides: { source?: string; sink?: string } = {}) =>
    parseJob({
      name: 's3run',
      source: { uri: overrides.source ?? `s3://${src}/images`, endpoint: s3.endpoint },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
      batchSize: 4,
      shardSize: 3,
      sink: { uri: overrides.sink ?? `s3://${out}/emb`, endpoint: s3.endpoint },
    });

  it('embeds every image, commits parts, manifest and _SUCCESS to the bucket', async () => {
    const t0 = performance.now();
    const summary = await runJob(job(), { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    const seconds = (performance.now() - t0) / 1000;
    expect(summary.status).toBe('committed');
    expect(summary.rows).toBe(6);
    expect(summary.errorRows).toBe(1);
    expect(summary.shards).toEqual({ total: 3, done: 3, failed: 0, cancelled: 0 });
    const runKey = `emb/s3run/${summary.fingerprint}/${summary.runId}`;
    expect(summary.output.uri).toBe(`s3://${out}/${runKey}`);
    expect(summary.output.files).toEqual([0, 1, 2].map((i) => `s3://${out}/${runKey}/part-0000${i}.arrow`));

    // (bookkeeping under _index/ aside, which readers skip like every '_' name; the keys of the
    // prefix's objects are in one plan file, written by enqueue and read by the workers; and the
    // dataset's _LATEST pointer beside its runs)
    expect((await s3.keys(out)).filter((k) => !k.includes('/_index/'))).toEqual(
      ['_SUCCESS', '_manifest.json', '_plan/ids-00000.arrow', 'errors-00001.arrow', 'part-00000.arrow', 'part-00001.arrow', 'part-00002.arrow']
        .map((k) => `${runKey}/${k}`)
        .concat(['emb/s3run/_LATEST']),
    );
    expect(Buffer.from(await s3.get(out, 'emb/s3run/_LATEST')).toString()).toBe(`${summary.fingerprint}/${summary.runId}\n`);
    expect(await s3.pendingUploads(out)).toEqual([]);
    const manifest = JSON.parse(Buffer.from(await s3.get(out, `${runKey}/_manifest.json`)).toString());
    // named relative to the run folder
    expect(manifest).toMatchObject({
      status: 'committed',
      rows: 6,
      errorRows: 1,
      files: ['part-00000.arrow', 'part-00001.arrow', 'part-00002.arrow'],
      runId: summary.runId,
    });
    expect(manifest.source).toMatchObject({ uri: `s3://${src}/images`, type: 'images', endpoint: s3.endpoint });

    const ids: string[] = [];
    const hidden: Float32Array[] = [];
    for (const i of [0, 1, 2]) {
      const t = tableFromIPC(await s3.get(out, `${runKey}/part-0000${i}.arrow`));
      expect(t.schema.fields.map((f) => f.name)).toEqual(['id', 'hidden']);
      expect(String(t.schema.fields[1]!.type)).toBe('FixedSizeList[64]<Float32>');
      expect(t.schema.metadata.get('layertap.runId')).toBe(summary.runId);
      for (let r = 0; r < t.numRows; r++) ids.push(String(t.getChild('id')!.get(r)));
      hidden.push(...featureRows(t, 'hidden'));
    }
    // code-point order of the keys relative to the prefix; the broken file is an error row
    expect(ids).toEqual(['a.png', 'b.jpg', 'c dir/plus+hash#.png', 'c dir/space name.png', 'dup-of-a.png', 'ü/名前.jpeg']);
    const errors = tableFromIPC(await s3.get(out, `${runKey}/errors-00001.arrow`));
    expect(errors.getChild('id')!.toArray()).toEqual(['z-broken.png']);
    expect(errors.getChild('stage')!.toArray()).toEqual(['decode']);

    // the features are what the model gives for the same bytes, decoded here
    const resolved = await resolveJob(job());
    const runner = await loadRunner({
      uri: resolved.model.uri,
      backend: 'cpu',
      taps: resolved.taps,
      inputShape: resolved.inputShape,
      fingerprint: resolved.fingerprint,
      preprocess: resolved.preprocess,
    });
    let worst = 0;
    for (const [i, id] of ids.entries()) {
      const x = await decodeImage(images.get(id)!, resolved.preprocess!);
      const ref = (await runner.run(singleFloatInput(runner, x, resolved.inputShape))).hidden!.data as Float32Array;
      worst = Math.max(worst, maxAbsDiff(ref, hidden[i]!));
    }
    await runner.dispose();
    expect(worst).toBeLessThan(1e-5);
    expect(maxAbsDiff(hidden[0]!, hidden[4]!)).toBe(0); // a.png and its copy
    console.log(
      `s3 run: 7 images (6 rows, 1 error row) from s3:// to s3:// in ${seconds.toFixed(2)} s; max abs diff to a direct forward pass ${worst.toExponential(2)}`,
    );
  });

  it('restores run records from the bucket with runs --rebuild s3://... --endpoint', async () => {
    const summary = await runJob(job(), { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    expect(summary.status).toBe('committed');
    // an empty registry (as after Redis was wiped), and no endpoint in the environment
    const fresh = testPrefix();
    const env = { REDIS_URL, LAYERTAP_PREFIX: fresh.prefix, AWS_ENDPOINT_URL: '', AWS_ENDPOINT_URL_S3: '' };
    try {
      const rebuilt = await runCli(['runs', '--rebuild', `s3://${out}/emb`, '--endpoint', s3.endpoint, '--json'], env);
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(rebuilt.stderr).toMatch(/restored \d+ run record\(s\) from s3:\/\//);
      const runs = (JSON.parse(rebuilt.stdout) as { runs: Array<{ runId: string; status: string; rows: number; errorRows: number; files: string[] }> }).runs;
      expect(runs.find((r) => r.runId === summary.runId)).toMatchObject({ status: 'committed', rows: 6, errorRows: 1, files: summary.output.files });

      const misuse = await runCli(['runs', '--endpoint', s3.endpoint], env);
      expect(misuse.code).toBe(2);
      expect(misuse.stderr).toContain('layertap: runs: --endpoint only applies with --rebuild s3://bucket/prefix');
    } finally {
      await fresh.cleanup();
    }
  }, 60_000);

  it('fails before any work, naming the bucket, when a bucket does not exist', async () => {
    const { prefix: p2, cleanup: c2 } = testPrefix();
    try {
      const settings = { redisUrl: REDIS_URL, prefix: p2 };
      const sinkErr = await runJob(job({ sink: 's3://no-such-out-bucket/emb' }), { settings }).catch((e: unknown) => e);
      expect(sinkErr).toBeInstanceOf(JobConfigError);
      expect((sinkErr as Error).message).toBe(`sink.uri: bucket 'no-such-out-bucket' does not exist at ${s3.endpoint}; create it first or fix the uri`);
      const srcErr = await runJob(job({ source: 's3://no-such-src-bucket/images' }), { settings }).catch((e: unknown) => e);
      expect(srcErr).toBeInstanceOf(JobConfigError);
      expect((srcErr as Error).message).toBe(`source.uri: bucket 'no-such-src-bucket' does not exist at ${s3.endpoint}; create it first or fix the uri`);
      const tableErr = await runJob(job({ source: `s3://${src}/tables/missing.parquet` }), { settings }).catch((e: unknown) => e);
      expect((tableErr as Error).message).toBe(
        `source.uri: no object s3://${src}/tables/missing.parquet (bucket '${src}' has no key 'tables/missing.parquet')`,
      );
      // nothing was queued
      const r = new Redis(REDIS_URL);
      try {
        expect(await r.keys(`${p2}:*`)).toEqual([]);
      } finally {
        r.disconnect();
      }
    } finally {
      await c2();
    }
  });
});
