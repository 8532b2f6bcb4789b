import { describe, expect, it } from 'vitest';
import type { ResolvedTap } from '../../../src/config/resolved.js';
import { tapColumn, tapValues, tokenTapValues } from '../../../src/models/reductions.js';
import { tap } from '../../helpers/models.js';

/** An activation of `dims` with values that differ everywhere. */
function activation(dims: number[]): Float32Array {
  return Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, k) => Math.sin(k * 0.7));
}

// `plan` sizes a column with tapColumn; the runners pool with tapValues (image and tensor models)
// and tokenTapValues (text models). Each case says what tapColumn gives, and checks that the
// runner writes that very shape.
describe('the column a tap writes', () => {
  const cases: Array<{
    what: string;
    dims: number[];
    t: Partial<ResolvedTap>;
    layout: 'nhwc' | 'nchw';
    text: boolean;
    shape: Array<number | null>;
    out: string;
  }> = [
    { what: 'NCHW kept whole', dims: [2, 16, 13, 13], t: {}, layout: 'nchw', text: false, shape: [16, 13, 13], out: 'nchw' },
    { what: 'NCHW mean over H, W', dims: [2, 16, 13, 13], t: { reduce: 'mean' }, layout: 'nchw', text: false, shape: [16], out: 'nchw' },
    { what: 'NHWC max over H, W', dims: [2, 13, 13, 16], t: { reduce: 'max' }, layout: 'nhwc', text: false, shape: [16], out: 'nhwc' },
    { what: 'NCHW max over axes [3]', dims: [2, 16, 13, 11], t: { reduce: 'max', axes: [3] }, layout: 'nchw', text: false, shape: [16, 13], out: 'nchw' },
    { what: 'a [N, D] output, mean', dims: [2, 64], t: { reduce: 'mean' }, layout: 'nhwc', text: false, shape: [64], out: 'nhwc' },
    { what: 'token states kept', dims: [2, 5, 4], t: { reduce: 'none' }, layout: 'nchw', text: true, shape: [null, 4], out: 'tokens' },
    { what: 'token states, mean', dims: [2, 5, 4], t: { reduce: 'mean' }, layout: 'nchw', text: true, shape: [4], out: 'pooled' },
    { what: 'token states, last', dims: [2, 5, 4], t: { reduce: 'last' }, layout: 'nchw', text: true, shape: [4], out: 'pooled' },
    { what: 'a pooler, cls', dims: [2, 4], t: { reduce: 'cls' }, layout: 'nchw', text: true, shape: [4], out: 'pooled' },
    { what: "a text model's 4-d output, mean", dims: [2, 3, 5, 5], t: { reduce: 'mean' }, layout: 'nchw', text: true, shape: [3], out: 'pooled' },
  ];

  it.each(cases)('$what: $shape, $out, as the runner writes it', ({ dims, t, layout, text, shape, out }) => {
    const theTap = tap('x', 'output', t);
    expect(tapColumn(theTap, dims, { layout, text })).toEqual({ shape, layout: out });
    if (text) {
      const lengths = Int32Array.from({ length: dims[0]! }, (_, r) => Math.min(dims[1]!, r + 2));
      const got = tokenTapValues(activation(dims), dims, lengths, theTap, layout);
      expect(got.lengths ? [null, ...got.shape] : got.shape).toEqual(shape);
    } else {
      expect(tapValues(activation(dims), dims, theTap, dims[0]!, layout).shape).toEqual(shape);
    }
  });

  it('keeps the sizes a model does not fix (its batch, its tokens) unknown', () => {
    expect(tapColumn(tap('x', 'output', { reduce: 'none' }), [null, null, 32], { layout: 'nchw', text: true })).toEqual({
      shape: [null, 32],
      layout: 'tokens',
    });
    expect(tapColumn(tap('x', 'output', { reduce: 'mean' }), [null, 32, null, null], { layout: 'nchw', text: false })).toEqual({ shape: [32], layout: 'nchw' });
    expect(tapColumn(tap('x'), [null, 3, null, null], { layout: 'nchw', text: false })).toEqual({ shape: [3, null, null], layout: 'nchw' });
  });
});
