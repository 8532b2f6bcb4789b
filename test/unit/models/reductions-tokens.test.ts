import { describe, expect, it } from 'vitest';
import { tokenTapValues } from '../../../src/models/reductions.js';
import { pickRows } from '../../../src/types/features.js';
import { fromFloat16Array } from '../../../src/types/float16.js';
import { tap } from '../../helpers/models.js';

// 2 rows padded to 3 tokens of D = 2: row 0 has 2 real tokens, row 1 has 3; padding holds 99
const STATES = Float32Array.of(1, 2, 3, -4, 99, 99, 5, 6, 7, 8, 9, -10);
const DIMS = [2, 3, 2];
const LENGTHS = Int32Array.of(2, 3);

describe('pooling a text model output over real tokens', () => {
  it('mean, max, cls and last never read the padding', () => {
    const pooled = (reduce: 'mean' | 'max' | 'cls' | 'last') => [...tokenTapValues(STATES, DIMS, LENGTHS, tap('x', 'output', { reduce })).data];
    expect(pooled('mean')).toEqual([2, -1, 7, 4 / 3].map(Math.fround));
    expect(pooled('max')).toEqual([3, 2, 9, 8]);
    expect(pooled('cls')).toEqual([1, 2, 5, 6]);
    expect(pooled('last')).toEqual([3, -4, 9, -10]);
  });

  it('keeps the real tokens as a ragged output with none, L2-normalised per token', () => {
    const out = tokenTapValues(STATES, DIMS, LENGTHS, tap('x', 'output', { reduce: 'none', normalize: 'l2' }));
    expect(out.shape).toEqual([2]);
    expect([...out.lengths!]).toEqual([2, 3]);
    expect(out.data.length).toBe(10);
    for (let t = 0; t < 5; t++) expect(Math.hypot(out.data[2 * t]!, out.data[2 * t + 1]!)).toBeCloseTo(1, 6);
    expect(out.data[2]! / out.data[3]!).toBeCloseTo(3 / -4, 6);
  });

  it('gives float16 bits when the tap asks for them, and pools a [rows, D] output as any model does', () => {
    const half = tokenTapValues(STATES, DIMS, LENGTHS, tap('x', 'output', { reduce: 'cls', dtype: 'float16' }));
    expect(half.data).toBeInstanceOf(Uint16Array);
    expect([...fromFloat16Array(half.data as Uint16Array)]).toEqual([1, 2, 5, 6]);
    const pooler = tokenTapValues(Float32Array.of(1, 2, 3, 4), [2, 2], LENGTHS, tap('p', 'output', { reduce: 'cls' }));
    expect([...pooler.data]).toEqual([1, 2, 3, 4]);
  });

  it('picks rows of ragged outputs from several batches in any order', () => {
    const a = tokenTapValues(STATES, DIMS, LENGTHS, tap('x', 'output', { reduce: 'none' }));
    const b = { data: Float32Array.of(0.5, 0.25), shape: [2], lengths: Int32Array.of(1) };
    const picked = pickRows(
      [a, b],
      [
        [0, 1],
        [1, 0],
        [0, 0],
      ],
    );
    expect([...picked.lengths!]).toEqual([3, 1, 2]);
    expect([...picked.data]).toEqual([5, 6, 7, 8, 9, -10, 0.5, 0.25, 1, 2, 3, -4]);
  });
});
