import { copyFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { readNpy } from '../../src/sources/npy.js';
import { featureRows, maxAbsDiff, readArrow, REDIS_URL, SEED, tempDir, testPrefix } from '../helpers/index.js';

const SEED_ONNX = join(SEED, 'seed_model.onnx');

// The TF.js parity run again on the exported ONNX model: the same hook points named by PyTorch
// module path, through the queue, the pool (onnxruntime in its threads) and committed Arrow files.
describe('ONNX seed parity through a full run', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();

  beforeAll(async () => {
    tmp = await tempDir();
    await copyFile(join(SEED, 'input_nchw.npy'), join(tmp.dir, 'input.npy'));
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('reproduces the PyTorch hook captures to 1e-5 from the committed Arrow files (NCHW)', async () => {
    const job = parseJob({
      name: 'seed-onnx',
      source: { uri: join(tmp.dir, 'input.npy') },
      model: { uri: SEED_ONNX },
      taps: [
        { layer: 'linear_class.0', at: 'input', as: 'hidden' },
        { layer: 'linear_1.1', at: 'output' },
        { layer: 'conv_16.2', at: 'output' },
      ],
      batchSize: 2,
      shardSize: 2,
      sink: { uri: join(tmp.dir, 'out') },
    });
    const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads: 2 });
    expect(summary.status).toBe('committed');
    expect(summary.rows).toBe(3);
    expect(summary.errorRows).toBe(0);
    expect(summary.shards).toEqual({ total: 2, done: 2, failed: 0, cancelled: 0 });

    const runDir = summary.output.uri;
    expect((await readdir(runDir)).sort()).toEqual(['_SUCCESS', '_index', '_manifest.json', 'part-00000.arrow', 'part-00001.arrow']);
    const manifest = JSON.parse(await readFile(join(runDir, '_manifest.json'), 'utf8'));
    expect(manifest.fingerprint).toBe(summary.fingerprint);

    const ids: string[] = [];
    const cols: Record<string, Float32Array[]> = { hidden: [], linear_1_1: [], conv_16_2: [] };
    for (const f of summary.output.files) {
      const t = await readArrow(f);
      expect(t.schema.fields.map((x) => x.name)).toEqual(['id', 'hidden', 'linear_1_1', 'conv_16_2']);
      expect(t.schema.metadata.get('layertap.runtime')).toContain('onnx');
      const conv = t.schema.fields[3]!;
      expect(JSON.parse(conv.metadata.get('layertap.shape')!)).toEqual([16, 13, 13]);
      expect(conv.metadata.get('layertap.layout')).toBe('nchw');
      expect(conv.metadata.get('layertap.layer')).toBe('conv_16.2');
      expect(t.schema.fields[1]!.metadata.get('layertap.at')).toBe('input');
      const idCol = t.getChild('id')!;
      for (let i = 0; i < t.numRows; i++) ids.push(String(idCol.get(i)));
      for (const k of Object.keys(cols)) cols[k]!.push(...featureRows(t, k));
    }
    expect(ids).toEqual(['0', '1', '2']);

    let worst = 0;
    for (const [col, file] of [
      ['hidden', 'linear_class.0__input.npy'],
      ['linear_1_1', 'linear_1.1__output.npy'],
      ['conv_16_2', 'conv_16.2__output.npy'],
    ] as const) {
      const ref = (await readNpy(join(SEED, 'expected', file))).data;
      const got = new Float32Array(ref.length);
      cols[col]!.forEach((r, i) => got.set(r, i * r.length));
      const err = maxAbsDiff(got, ref);
      worst = Math.max(worst, err);
      expect(err, col).toBeLessThanOrEqual(1e-5);
    }
    console.log(`ONNX seed parity (full run): max abs error ${worst.toExponential(2)}`);
  });
});
