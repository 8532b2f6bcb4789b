import { describe, expect, it } from 'vitest';
import { firstNonFinite } from '../../../src/workers/finite.js';

describe('firstNonFinite', () => {
  const row = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e3);

  it('is -1 for finite values, including the largest float32, -0 and subnormals', () => {
    const v = row(103);
    v[0] = 3.4028234663852886e38;
    v[1] = -3.4028234663852886e38;
    v[2] = -0;
    v[3] = 1e-45;
    expect(firstNonFinite(v, 0, v.length)).toBe(-1);
    expect(firstNonFinite(new Float32Array(0), 0, 0)).toBe(-1);
  });

  it('finds NaN, Infinity and -Infinity at any position, relative to start', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      for (const at of [0, 1, 2, 3, 4, 57, 100, 101, 102]) {
        const v = row(103);
        v[at] = bad;
        expect(firstNonFinite(v, 0, 103), `${bad} at ${at}`).toBe(at);
      }
    }
    const v = row(300);
    v[150] = Number.NaN;
    v[260] = Number.NaN;
    expect(firstNonFinite(v, 100, 200)).toBe(50);
    expect(firstNonFinite(v, 0, 100)).toBe(-1);
    expect(firstNonFinite(v, 200, 300)).toBe(60);
    // +Inf and -Inf in different lanes do not cancel out
    const w = row(8);
    w[1] = Number.POSITIVE_INFINITY;
    w[2] = Number.NEGATIVE_INFINITY;
    expect(firstNonFinite(w, 0, 8)).toBe(1);
  });
});
