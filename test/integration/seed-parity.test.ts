import { copyFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { readNpy } from '../../src/sources/npy.js';
import { featureRows, maxAbsDiff, nhwcToNchw, readArrow, REDIS_URL, SEED, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

// The classic hook points of the seed model: the classifier's input (64-d hidden), a ReLU output
// and a pooled conv map; the run goes through the queue, the pool and a committed Arrow file.
describe('seed parity through a full run', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();

  beforeAll(async () => {
    tmp = await tempDir();
    await copyFile(join(SEED, 'input_nhwc.npy'), join(tmp.dir, 'input.npy'));
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('reproduces the PyTorch hook captures to 1e-5 from the committed Arrow file', async () => {
    const job = parseJob({
      name: 'seed',
      source: { uri: join(tmp.dir, 'input.npy') },
      model: { uri: SEED_MODEL, backend: 'auto' },
      taps: [
        { layer: 'linear_class.0', at: 'input', as: 'hidden' },
        { layer: 'linear_1.1', at: 'output' },
        { layer: 'conv_16.2', at: 'output' },
      ],
      batchSize: 2,
      shardSize: 2,
      sink: { uri: join(tmp.dir, 'out') },
    });
    const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    expect(summary.status).toBe('committed');
    expect(summary.rows).toBe(3);
    expect(summary.errorRows).toBe(0);
    expect(summary.shards).toEqual({ total: 2, done: 2, failed: 0, cancelled: 0 });
    expect(summary.output.files.map((f) => f.split('/').pop())).toEqual(['part-00000.arrow', 'part-00001.arrow']);

    const runDir = summary.output.uri;
    const listing = (await readdir(runDir)).sort();
    expect(listing).toEqual(['_SUCCESS', '_index', '_manifest.json', 'part-00000.arrow', 'part-00001.arrow']);
    const manifest = JSON.parse(await readFile(join(runDir, '_manifest.json'), 'utf8'));
    expect(manifest.rows).toBe(3);
    expect(manifest.status).toBe('committed');
    expect(manifest.fingerprint).toBe(summary.fingerprint);

    const ids: string[] = [];
    const cols: Record<string, Float32Array[]> = { hidden: [], linear_1_1: [], conv_16_2: [] };
    for (const f of summary.output.files) {
      const t = await readArrow(f);
      expect(t.schema.fields.map((x) => x.name)).toEqual(['id', 'hidden', 'linear_1_1', 'conv_16_2']);
      expect(t.schema.metadata.get('layertap.fingerprint')).toBe(summary.fingerprint);
      expect(t.schema.metadata.get('layertap.runId')).toBe(summary.runId);
      const conv = t.schema.fields[3]!;
      expect(JSON.parse(conv.metadata.get('layertap.shape')!)).toEqual([13, 13, 16]);
      expect(conv.metadata.get('layertap.layout')).toBe('nhwc');
      expect(t.schema.fields[1]!.metadata.get('layertap.at')).toBe('input');
      const idCol = t.getChild('id')!;
      for (let i = 0; i < t.numRows; i++) ids.push(String(idCol.get(i)));
      for (const k of Object.keys(cols)) cols[k]!.push(...featureRows(t, k));
    }
    expect(ids).toEqual(['0', '1', '2']);

    const expected = async (name: string) => (await readNpy(join(SEED, 'expected', name))).data;
    const checks: Array<[string, string, (r: Float32Array) => Float32Array]> = [
      ['hidden', 'linear_class.0__input.npy', (r) => r],
      ['linear_1_1', 'linear_1.1__output.npy', (r) => r],
      ['conv_16_2', 'conv_16.2__output.npy', (r) => nhwcToNchw(r, 13, 13, 16)],
    ];
    let worst = 0;
    for (const [col, file, toTorch] of checks) {
      const ref = await expected(file);
      const got = new Float32Array(ref.length);
      const per = ref.length / 3;
      cols[col]!.forEach((r, i) => got.set(toTorch(r), i * per));
      const err = maxAbsDiff(got, ref);
      worst = Math.max(worst, err);
      expect(err, col).toBeLessThanOrEqual(1e-5);
    }
    console.log(`seed parity (full run): max abs error ${worst.toExponential(2)}`);
  });
});
