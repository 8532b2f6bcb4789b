import { describe, expect, it } from 'vitest';
import { REDUCE_MODES } from '../../../src/config/schema.js';
import { poolAxes, reduceProblem, reduceTokens, spatialAxes, tapColumn, tapValues, tokenTapValues, type Reduction } from '../../../src/models/reductions.js';
import { selectBackend } from '../../../src/models/tfjs/backend.js';
import { loadTfjs } from '../../../src/models/tfjs/tfjs.js';
import { maxAbsDiff, tap } from '../../helpers/models.js';

/** An activation of `dims` with values that differ everywhere. */
function activation(dims: number[]): Float32Array {
  return Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, k) => Math.sin(k * 0.7));
}

// Every mode of the job file, through every layout: a mode added to REDUCE_MODES and REDUCTIONS is
// checked here without a line of this test changing.
describe('every reduce mode, in every layout', () => {
  const image = [
    { dims: [2, 3, 4, 5], layout: 'nchw' as const },
    { dims: [2, 4, 5, 3], layout: 'nhwc' as const },
    { dims: [2, 6], layout: 'nchw' as const },
  ];

  it.each(REDUCE_MODES)('%s: an image or tensor activation gives the column tapColumn says, or planning refuses the mode', (reduce) => {
    const t = tap('x', 'output', { reduce });
    const problem = reduceProblem(t, false);
    if (problem !== null) {
      // a mode that fits text models only is refused by name before any work
      expect(problem.field).toBe('reduce');
      expect(problem.message).toMatch(new RegExp(`^${reduce} picks a token of a text model's output; this model takes no input_ids \\(use .+\\)$`));
      return;
    }
    for (const { dims, layout } of image) {
      const got = tapValues(activation(dims), dims, t, dims[0]!, layout);
      expect(got.values.length).toBe(dims[0]! * got.shape.reduce((a, b) => a * b, 1));
      expect(tapColumn(t, dims, { layout, text: false })).toEqual({ shape: got.shape, layout });
    }
  });

  it.each(REDUCE_MODES)('%s: token states give the column tapColumn says, without reading the padding', (reduce) => {
    const t = tap('x', 'output', { reduce });
    expect(reduceProblem(t, true)).toBeNull();
    const dims = [2, 5, 4];
    const lengths = Int32Array.of(2, 5);
    const states = activation(dims);
    const got = tokenTapValues(states, dims, lengths, t);
    const column = tapColumn(t, dims, { layout: 'nchw', text: true });
    expect(got.lengths ? [null, ...got.shape] : got.shape).toEqual(column.shape);
    // what the padding holds changes nothing
    const padded = states.slice();
    padded.fill(1e6, 2 * 4, 5 * 4);
    expect([...tokenTapValues(padded, dims, lengths, t).data]).toEqual([...got.data]);
  });
});

describe('mean_sqrt_len', () => {
  it("is the sum over each row's real tokens divided by the square root of their count, as sentence-transformers pools", () => {
    // 2 rows padded to 3 tokens of D = 2; row 0 has 2 real tokens, row 1 has 3; padding holds 99
    const states = Float32Array.of(1, 2, 3, -4, 99, 99, 5, 6, 7, 8, 9, -10);
    const got = tokenTapValues(states, [2, 3, 2], Int32Array.of(2, 3), tap('x', 'output', { reduce: 'mean_sqrt_len' }));
    const want = [4 / Math.SQRT2, -2 / Math.SQRT2, 21 / Math.sqrt(3), 4 / Math.sqrt(3)];
    expect(maxAbsDiff(got.data as Float32Array, Float32Array.from(want))).toBeLessThanOrEqual(1e-6);
    expect(got.shape).toEqual([2]);
  });
});

// What a new mode has to provide is an entry of REDUCTIONS; the application to each layout is
// shared. Two toy entries run through it: a pooling one (sum) and a picking one (the middle token).
describe('a toy reduction through the shared application', () => {
  const sum: Extract<Reduction, { kind: 'pool' }> = {
    kind: 'pool',
    pool: (src, at, count, width, out, outAt) => {
      for (let i = 0; i < width; i++) {
        let acc = 0;
        for (let t = 0; t < count; t++) acc += src[at + t * width + i]!;
        out[outAt + i] = acc;
      }
    },
    tensor: (core, x, axes) => core.sum(x, axes),
  };
  const middle: Extract<Reduction, { kind: 'pick' }> = { kind: 'pick', token: (real) => Math.floor(real / 2) };

  it('pools NCHW and NHWC activations over their spatial axes', () => {
    // [1, 2, 2, 2] NCHW: channel 0 is 1..4, channel 1 is 10..40
    const nchw = Float32Array.of(1, 2, 3, 4, 10, 20, 30, 40);
    expect([...poolAxes(nchw, [1, 2, 2, 2], spatialAxes(4, 'nchw'), sum)]).toEqual([10, 100]);
    // the same pixels laid out NHWC
    const nhwc = Float32Array.of(1, 10, 2, 20, 3, 30, 4, 40);
    expect([...poolAxes(nhwc, [1, 2, 2, 2], spatialAxes(4, 'nhwc'), sum)]).toEqual([10, 100]);
  });

  it('pools and picks over each row’s real tokens only', () => {
    // 2 rows padded to 3 tokens of D = 2; row 0 has 2 real tokens, row 1 has 3; padding holds 99
    const states = Float32Array.of(1, 2, 3, -4, 99, 99, 5, 6, 7, 8, 9, -10);
    const lengths = Int32Array.of(2, 3);
    expect([...reduceTokens(states, [2, 3, 2], lengths, sum)]).toEqual([4, -2, 21, 4]);
    expect([...reduceTokens(states, [2, 3, 2], lengths, middle)]).toEqual([3, -4, 7, 8]);
  });

  it('gives the same values on a TF.js backend', async () => {
    await selectBackend('cpu');
    const { core } = await loadTfjs();
    const dims = [2, 3, 4, 5];
    const values = activation(dims);
    const onBackend = core.tidy(() => sum.tensor(core, core.tensor(values, dims), [1, 2]).dataSync() as Float32Array);
    expect(maxAbsDiff(poolAxes(values, dims, [1, 2], sum), onBackend)).toBeLessThanOrEqual(1e-5);
  });
});
