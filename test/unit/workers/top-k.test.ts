import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TopK } from '../../../src/workers/top-k.js';

describe('TopK', () => {
  it('keeps the k highest scores of any sequence, best first', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, min: -1, max: 1 }), { maxLength: 200 }), fc.integer({ min: 1, max: 20 }), (scores, k) => {
        const top = new TopK<number>(k);
        scores.forEach((s, i) => top.push(s, i));
        const want = [...scores].sort((a, b) => b - a).slice(0, k);
        expect(top.sorted().map((e) => e.score)).toEqual(want);
        for (const e of top.sorted()) expect(scores[e.item]).toBe(e.score);
      }),
    );
  });

  it('refuses a k that is not a positive integer', () => {
    expect(() => new TopK(0)).toThrow('k must be a positive integer, got 0');
  });
});
