import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../../../src/models/tfjs/backend.js';
import { tapValues } from '../../../../src/models/reductions.js';
import { tapTensor } from '../../../../src/models/tfjs/tap-tensor.js';
import { loadTfjs } from '../../../../src/models/tfjs/tfjs.js';
import { maxAbsDiff, tap } from '../../../helpers/models.js';

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 30 - 1;
  });
}

// tapValues is the plain-array twin of tapTensor, for runtimes whose outputs are arrays (ONNX):
// the same reduce/normalize must give the same features in either layout.
describe('tapValues agrees with tapTensor', () => {
  const cases: Array<{ dims: number[]; layout: 'nhwc' | 'nchw' }> = [
    { dims: [3, 4, 5, 6], layout: 'nchw' },
    { dims: [3, 4, 5, 6], layout: 'nhwc' },
    { dims: [2, 3, 7], layout: 'nchw' },
    { dims: [2, 3, 7], layout: 'nhwc' },
    { dims: [2, 2, 3, 4, 5], layout: 'nchw' },
    { dims: [4, 9], layout: 'nchw' },
  ];
  for (const { dims, layout } of cases) {
    it(`[${dims.join(', ')}] ${layout}`, async () => {
      await selectBackend('cpu');
      const { core } = await loadTfjs();
      const values = random(
        dims.reduce((a, b) => a * b, 1),
        dims.length * 7 + dims[1]!,
      );
      const rows = dims[0]!;
      for (const reduce of ['none', 'mean', 'max', 'mean_sqrt_len'] as const) {
        for (const normalize of ['none', 'l2'] as const) {
          const t = tap('x', 'output', { reduce, normalize });
          const got = tapValues(values, dims, t, rows, layout);
          const ref = core.tidy(() => {
            const f = tapTensor(core, core.tensor(values, dims), t, rows, layout);
            return { shape: f.shape, data: f.tensor.dataSync() as Float32Array };
          });
          expect(got.shape, `${reduce}/${normalize}`).toEqual(ref.shape);
          expect(maxAbsDiff(got.values, ref.data), `${reduce}/${normalize}`).toBeLessThanOrEqual(1e-6);
        }
      }
    });
  }

  it('keeps NCHW channels on axis 1: mean over H and W per channel', () => {
    // [1, 2, 2, 2]: channel 0 is 1..4, channel 1 is 10..40
    const values = Float32Array.from([1, 2, 3, 4, 10, 20, 30, 40]);
    const out = tapValues(values, [1, 2, 2, 2], tap('x', 'output', { reduce: 'mean' }), 1, 'nchw');
    expect(out.shape).toEqual([2]);
    expect(Array.from(out.values)).toEqual([2.5, 25]);
  });

  it('does not change the array it was given, and keeps all-zero rows at zero', () => {
    const values = Float32Array.from([0, 0, 3, 4]);
    const out = tapValues(values, [2, 2], tap('x', 'output', { normalize: 'l2' }), 2, 'nchw');
    expect(Array.from(out.values)).toEqual(Array.from(Float32Array.from([0, 0, 0.6, 0.8])));
    expect(Array.from(values)).toEqual([0, 0, 3, 4]);
  });

  it('names a tensor without a batch axis', () => {
    expect(() => tapValues(Float32Array.from([1, 2, 3, 4]), [4], tap('/Shape'), 3, 'nchw')).toThrow(
      "tap '/Shape:output' (/Shape at output) has shape [4], which has no batch axis of 3 rows",
    );
  });
});
