import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { loadRunner, singleFloatInput } from '../../src/models/index.js';
import { runJob } from '../../src/queue/index.js';
import { decodeImage } from '../../src/preprocess/image-decode.js';
import { featureRows, maxAbsDiff, readArrow, REDIS_URL, SEED, tempDir, testPrefix } from '../helpers/index.js';

const SEED_ONNX = join(SEED, 'seed_model.onnx');
const MEAN = 0.1307;
const STD = 0.3081;

// Grayscale pictures into the 1-channel NCHW ONNX model with MNIST-style mean/std: the values the
// model sees (its first module's input) are (pixel / 255 - mean) / std, laid out [1, 28, 28].
describe('image folder run on an ONNX model (NCHW, mean/std)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const pixels = new Map<string, Uint8Array>();

  beforeAll(async () => {
    tmp = await tempDir();
    const data = join(tmp.dir, 'images');
    await mkdir(data, { recursive: true });
    for (let i = 0; i < 5; i++) {
      const raw = new Uint8Array(28 * 28);
      for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) raw[y * 28 + x] = (x * 9 + y * (i + 2) * 3 + i * 50) % 256;
      const name = `digit-${i}.png`;
      await writeFile(
        join(data, name),
        await sharp(Buffer.from(raw), { raw: { width: 28, height: 28, channels: 1 } })
          .png()
          .toBuffer(),
      );
      pixels.set(name, raw);
    }
    // a larger RGB picture: resized and converted to grey on the way in
    const w = 40;
    const h = 34;
    const rgb = Buffer.alloc(w * h * 3);
    for (let p = 0; p < w * h; p++) rgb.set([(p * 5) % 256, (p * 11) % 256, (p * 3) % 256], p * 3);
    await writeFile(
      join(data, 'wide.jpg'),
      await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
        .jpeg()
        .toBuffer(),
    );
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('feeds normalised NCHW pixels and gives the features of a direct forward pass', async () => {
    const job = parseJob({
      name: 'digits',
      source: { uri: join(tmp.dir, 'images') },
      model: { uri: SEED_ONNX, backend: 'onnx' },
      preprocess: { mean: [MEAN], std: [STD] },
      taps: [
        { layer: 'conv_16.0', at: 'input', as: 'pixels' },
        { layer: 'linear_class.0', at: 'input', as: 'hidden', normalize: 'l2' },
        { layer: 'conv_32.1', reduce: 'mean', as: 'pooled' },
      ],
      batchSize: 4,
      shardSize: 4,
      sink: { uri: join(tmp.dir, 'out') },
    });
    const resolved = await resolveJob(job);
    expect(resolved.preprocess).toMatchObject({ layout: 'nchw', channels: 1, size: [28, 28] });
    const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads: 2 });
    expect(summary.status).toBe('committed');
    expect(summary.rows).toBe(6);
    expect(summary.errorRows).toBe(0);

    const ids: string[] = [];
    const cols: Record<string, Float32Array[]> = { pixels: [], hidden: [], pooled: [] };
    for (const f of summary.output.files) {
      const t = await readArrow(f);
      expect(JSON.parse(t.schema.fields[1]!.metadata.get('layertap.shape')!)).toEqual([1, 28, 28]);
      expect(JSON.parse(t.schema.fields[3]!.metadata.get('layertap.shape')!)).toEqual([32]);
      const idCol = t.getChild('id')!;
      for (let i = 0; i < t.numRows; i++) ids.push(String(idCol.get(i)));
      for (const k of Object.keys(cols)) cols[k]!.push(...featureRows(t, k));
    }
    expect(ids).toEqual(['digit-0.png', 'digit-1.png', 'digit-2.png', 'digit-3.png', 'digit-4.png', 'wide.jpg']);

    // what the model saw, from the pixels written
    ids.slice(0, 5).forEach((id, r) => {
      const want = Float32Array.from(pixels.get(id)!, (p) => (p / 255 - MEAN) / STD);
      expect(maxAbsDiff(cols.pixels![r]!, want), id).toBeLessThanOrEqual(1e-5);
    });

    // the rest equals one direct pass of the runner over the same decoded rows
    const input = new Float32Array(6 * 784);
    for (const [r, id] of ids.entries()) {
      input.set(await decodeImage(new Uint8Array(await readFile(join(tmp.dir, 'images', id))), resolved.preprocess!), r * 784);
    }
    const runner = await loadRunner({
      ...resolved.model,
      taps: resolved.taps,
      inputShape: resolved.inputShape,
      fingerprint: 'direct',
      preprocess: resolved.preprocess,
    });
    try {
      const direct = await runner.run(singleFloatInput(runner, input, resolved.inputShape));
      for (const col of ['pixels', 'hidden', 'pooled'] as const) {
        const per = direct[col]!.data.length / 6;
        cols[col]!.forEach((row, r) =>
          expect(maxAbsDiff(row, direct[col]!.data.subarray(r * per, (r + 1) * per)), `${col} ${ids[r]}`).toBeLessThanOrEqual(1e-5),
        );
      }
      // l2-normalised rows
      for (const row of cols.hidden!) expect(Math.hypot(...row)).toBeCloseTo(1, 5);
    } finally {
      await runner.dispose();
    }
  });
});
