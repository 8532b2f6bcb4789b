import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { loadRunner, singleFloatInput } from '../../src/models/index.js';
import { runJob } from '../../src/queue/index.js';
import { decodeImage } from '../../src/preprocess/image-decode.js';
import { featureRows, maxAbsDiff, readArrow, REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

// An image folder with broken files in it: the broken ones become error rows (id, stage,
// message), every other image is embedded, and the features equal a direct forward pass.
describe('image folder run with bad files', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const good: string[] = [];

  beforeAll(async () => {
    tmp = await tempDir();
    const data = join(tmp.dir, 'images');
    await mkdir(join(data, 'a'), { recursive: true });
    await mkdir(join(data, 'b'), { recursive: true });
    for (let i = 0; i < 9; i++) {
      const w = 30 + i * 7;
      const h = 28 + i * 5;
      const raw = Buffer.alloc(w * h * 3);
      for (let p = 0; p < w * h; p++) {
        raw[p * 3] = (p * (i + 3)) % 256;
        raw[p * 3 + 1] = (p * 7 + i * 40) % 256;
        raw[p * 3 + 2] = (i * 29) % 256;
      }
      const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
      const rel = `${i % 2 ? 'a' : 'b'}/img-${i}.${i % 3 ? 'png' : 'jpg'}`;
      await writeFile(join(data, rel), i % 3 ? await img.png().toBuffer() : await img.jpeg().toBuffer());
      good.push(rel);
    }
    await writeFile(join(data, 'a/corrupt.png'), Buffer.from('\x89PNG\r\n\x1a\n this is not really a png'));
    await writeFile(join(data, 'b/empty.jpg'), Buffer.alloc(0));
    await writeFile(join(data, 'b/notes.jpg'), 'a text file with an image extension\n');
    good.sort();
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('writes error rows for broken files and features for the rest', async () => {
    const job = parseJob({
      name: 'imgs',
      source: { uri: join(tmp.dir, 'images') },
      model: { uri: SEED_MODEL },
      preprocess: { fit: 'cover', range: [0, 1] },
      taps: [{ layer: 'linear_1.1' }, { layer: 'conv_32.1', reduce: 'mean', as: 'pooled' }],
      batchSize: 4,
      shardSize: 8,
      sink: { uri: join(tmp.dir, 'out') },
    });
    const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads: 2 });
    expect(summary.status).toBe('committed');
    expect(summary.rows).toBe(9);
    expect(summary.errorRows).toBe(3);
    expect(summary.shards.total).toBe(2);

    const ids: string[] = [];
    const feats: Float32Array[] = [];
    const pooled: Float32Array[] = [];
    for (const f of summary.output.files) {
      const t = await readArrow(f);
      const col = t.getChild('id')!;
      for (let i = 0; i < t.numRows; i++) ids.push(String(col.get(i)));
      feats.push(...featureRows(t, 'linear_1_1'));
      pooled.push(...featureRows(t, 'pooled'));
      expect(JSON.parse(t.schema.fields[2]!.metadata.get('layertap.shape')!)).toEqual([32]);
      expect(t.schema.fields[2]!.metadata.get('layertap.reduce')).toBe('mean');
    }
    expect(ids).toEqual(good);

    const errors: Array<{ id: string; stage: string; message: string }> = [];
    for (const f of summary.output.errorFiles) {
      const t = await readArrow(f);
      for (let i = 0; i < t.numRows; i++) {
        errors.push({ id: String(t.getChild('id')!.get(i)), stage: String(t.getChild('stage')!.get(i)), message: String(t.getChild('message')!.get(i)) });
      }
    }
    expect(errors.map((e) => e.id).sort()).toEqual(['a/corrupt.png', 'b/empty.jpg', 'b/notes.jpg']);
    expect(errors.every((e) => e.stage === 'decode' && e.message.length > 0)).toBe(true);

    const listing = await readdir(summary.output.uri);
    expect(listing.filter((f) => f.startsWith('.') || f.endsWith('.tmp'))).toEqual([]);

    // the same images through a runner in this thread give the same features
    const resolved = await resolveJob(job);
    const runner = await loadRunner({
      uri: resolved.model.uri,
      backend: 'cpu',
      taps: resolved.taps,
      inputShape: resolved.inputShape,
      fingerprint: resolved.fingerprint,
      preprocess: resolved.preprocess,
    });
    const { readFile } = await import('node:fs/promises');
    for (let i = 0; i < good.length; i++) {
      const x = await decodeImage(await readFile(join(tmp.dir, 'images', good[i]!)), resolved.preprocess!);
      const out = await runner.run(singleFloatInput(runner, x, resolved.inputShape));
      expect(maxAbsDiff(out.linear_1_1!.data as Float32Array, feats[i]!)).toBeLessThan(1e-5);
      expect(maxAbsDiff(out.pooled!.data as Float32Array, pooled[i]!)).toBeLessThan(1e-5);
    }
    await runner.dispose();
  });
});
