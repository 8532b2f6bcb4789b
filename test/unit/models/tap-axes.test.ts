import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobConfigError, parseJob } from '../../../src/config/index.js';
import { computeFingerprint, resolveJob } from '../../../src/pipeline/index.js';
import { selectBackend } from '../../../src/models/tfjs/backend.js';
import { loadRunner, singleFloatInput } from '../../../src/models/index.js';
import { tapValues } from '../../../src/models/reductions.js';
import { tapTensor } from '../../../src/models/tfjs/tap-tensor.js';
import { loadTfjs } from '../../../src/models/tfjs/tfjs.js';
import { buildSchema } from '../../../src/sinks/index.js';
import { writeNpy } from '../../../src/sources/npy.js';
import { maxAbsDiff, removeTempDirs, tap, tempDir } from '../../helpers/models.js';
import { SEED_ONNX } from '../../helpers/onnx.js';

afterAll(() => removeTempDirs());

// `axes` says which axes reduce pools over, for activations whose layout the default gets wrong:
// a transformer's [N, tokens, D] output from ONNX is not [N, C, L].
describe('tap axes', () => {
  // [2 rows, 3 tokens, 4 dims]: token t of row r holds r*100 + t*10 + d
  const dims = [2, 3, 4];
  const values = Float32Array.from({ length: 24 }, (_, i) => Math.floor(i / 12) * 100 + (Math.floor(i / 4) % 3) * 10 + (i % 4));

  it('pools a [N, tokens, D] activation over the tokens with axes [1], in either layout', async () => {
    for (const layout of ['nchw', 'nhwc'] as const) {
      const mean = tapValues(values, dims, tap('h', 'output', { reduce: 'mean', axes: [1] }), 2, layout);
      expect(mean.shape).toEqual([4]);
      expect(Array.from(mean.values)).toEqual([10, 11, 12, 13, 110, 111, 112, 113]);
      const max = tapValues(values, dims, tap('h', 'output', { reduce: 'max', axes: [1] }), 2, layout);
      expect(Array.from(max.values)).toEqual([20, 21, 22, 23, 120, 121, 122, 123]);
    }
    // without axes, ONNX's nchw default pools the last axis: one value per token
    expect(tapValues(values, dims, tap('h', 'output', { reduce: 'mean' }), 2, 'nchw').shape).toEqual([3]);

    await selectBackend('cpu');
    const { core } = await loadTfjs();
    for (const axes of [[1], [2], [1, 2]]) {
      const t = tap('h', 'output', { reduce: 'mean', normalize: 'l2', axes });
      const got = tapValues(values, dims, t, 2, 'nchw');
      const ref = core.tidy(() => {
        const f = tapTensor(core, core.tensor(values, dims), t, 2, 'nchw');
        return { shape: f.shape, data: f.tensor.dataSync() as Float32Array };
      });
      expect(got.shape, JSON.stringify(axes)).toEqual(ref.shape);
      expect(maxAbsDiff(got.values, ref.data)).toBeLessThanOrEqual(1e-6);
    }
  });

  it('names the tap when an axis is past the activation', () => {
    expect(() => tapValues(values, dims, { ...tap('h', 'output', { reduce: 'mean', axes: [2, 3] }), as: 'pooled' }, 2, 'nchw')).toThrow(
      "tap 'pooled' (h at output): axes [2, 3] name axis 3, but the activation has 3 axes (0-2, 0 = batch)",
    );
  });

  it('runs through the ONNX runner: axes [2, 3] is the default pooling, [1] pools the channels', async () => {
    const input = Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => ((i * 31) % 97) / 97);
    const spec = (taps: ReturnType<typeof tap>[]) => ({
      uri: SEED_ONNX,
      backend: 'onnx' as const,
      taps,
      inputShape: [1, 28, 28],
      fingerprint: `axes-${taps.length}`,
      preprocess: null,
    });
    const runner = await loadRunner(
      spec([
        { ...tap('conv_16.0'), as: 'full' },
        { ...tap('conv_16.0', 'output', { reduce: 'mean' }), as: 'spatial' },
        { ...tap('conv_16.0', 'output', { reduce: 'mean', axes: [2, 3] }), as: 'spatial_axes' },
        { ...tap('conv_16.0', 'output', { reduce: 'max', axes: [1] }), as: 'channels' },
      ]),
    );
    try {
      const out = await runner.run(singleFloatInput(runner, input, [1, 28, 28]));
      expect(out.full!.shape).toEqual([16, 26, 26]);
      expect(out.spatial_axes!.shape).toEqual([16]);
      expect(Array.from(out.spatial_axes!.data)).toEqual(Array.from(out.spatial!.data));
      expect(out.channels!.shape).toEqual([26, 26]);
      const full = out.full!.data as Float32Array;
      const plane = 26 * 26;
      for (const [r, p] of [
        [0, 0],
        [1, 300],
        [1, plane - 1],
      ] as const) {
        let m = -Infinity;
        for (let c = 0; c < 16; c++) m = Math.max(m, full[r * 16 * plane + c * plane + p]!);
        expect(out.channels!.data[r * plane + p]).toBe(m);
      }
    } finally {
      await runner.dispose();
    }
  });
});

describe('tap axes in the job file', () => {
  async function resolveWith(tapConfig: Record<string, unknown>) {
    const dir = tempDir();
    await writeNpy(join(dir, 'x.npy'), new Float32Array(28 * 28), [1, 1, 28, 28]);
    return resolveJob(parseJob({ name: 't', source: { uri: join(dir, 'x.npy') }, model: { uri: SEED_ONNX }, taps: [tapConfig], sink: { uri: dir } }));
  }

  async function errorOf(p: Promise<unknown>): Promise<JobConfigError> {
    try {
      await p;
    } catch (e) {
      if (e instanceof JobConfigError) return e;
      throw e;
    }
    throw new Error('expected a JobConfigError');
  }

  it('refuses axes without a reduce, out-of-order axes and the batch axis, naming the field', async () => {
    let e = await errorOf(resolveWith({ layer: 'conv_16.0', axes: [1] }));
    expect(e.message).toBe('taps[0].axes: axes are what reduce pools over; set reduce: mean, max or mean_sqrt_len, or remove axes');
    expect(e.fields).toEqual(['taps[0].axes']);
    e = await errorOf(resolveWith({ layer: 'conv_16.0', reduce: 'mean', axes: [3, 2] }));
    expect(e.message).toBe('taps[0].axes: must be consecutive and ascending, like [1] or [2, 3]; got [3, 2]');
    e = await errorOf(resolveWith({ layer: 'conv_16.0', reduce: 'mean', axes: [0] }));
    expect(e.message).toContain('taps[0].axes[0]');
    expect(e.message).toContain('axis 0 is the batch axis');
  });

  it('keeps the fingerprint of taps without axes, changes it with axes, and records them in the schema', async () => {
    const t = { layer: 'a', at: 'output' as const, as: 'a', reduce: 'mean' as const, normalize: 'none' as const, dtype: 'float32' as const };
    // the fingerprint formula for taps without axes, as it was before axes existed
    const before = createHash('sha256')
      .update(JSON.stringify({ model: 'h1', preprocess: null, taps: [['a', 'output', 'a', 'mean', 'none', 'float32']] }))
      .digest('hex')
      .slice(0, 16);
    expect(computeFingerprint('h1', null, [t])).toBe(before);
    expect(computeFingerprint('h1', null, [{ ...t, axes: [1] }])).not.toBe(before);
    expect(computeFingerprint('h1', null, [{ ...t, axes: [1] }])).not.toBe(computeFingerprint('h1', null, [{ ...t, axes: [2] }]));

    const job = await resolveWith({ layer: 'conv_16.0', reduce: 'mean', axes: [1], as: 'pooled' });
    expect(job.taps[0]!.axes).toEqual([1]);
    const schema = buildSchema({
      taps: job.taps,
      shapes: { pooled: [26, 26] },
      layout: 'nchw',
      fingerprint: job.fingerprint,
      model: 'm',
      runtime: 'onnx',
      version: '0',
      runId: 'r',
    });
    expect(schema.fields[1]!.metadata.get('layertap.reduce_axes')).toBe('[1]');
    const plain = buildSchema({
      taps: [{ ...job.taps[0]!, axes: undefined }],
      shapes: { pooled: [16] },
      layout: 'nchw',
      fingerprint: 'f',
      model: 'm',
      runtime: 'onnx',
      version: '0',
      runId: 'r',
    });
    expect(plain.fields[1]!.metadata.has('layertap.reduce_axes')).toBe(false);
  });
});
