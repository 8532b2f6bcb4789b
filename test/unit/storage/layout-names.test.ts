import { describe, expect, it } from 'vitest';
import { errorsName, partName, runPrefix } from '../../../src/storage/index.js';

describe('output names', () => {
  it('pads shard indices to 5 digits and grows past 99999', () => {
    expect(partName(0)).toBe('part-00000.arrow');
    expect(partName(42)).toBe('part-00042.arrow');
    expect(partName(99999)).toBe('part-99999.arrow');
    expect(partName(123456)).toBe('part-123456.arrow');
    expect(partName(7, 'parquet')).toBe('part-00007.parquet');
    expect(errorsName(3)).toBe('errors-00003.arrow');
    expect(() => partName(-1)).toThrow(/non-negative integer/);
  });

  it('builds the run prefix and refuses path-like parts', () => {
    expect(runPrefix('products', '0123456789abcdef', 'r-1')).toBe('products/0123456789abcdef/r-1');
    expect(() => runPrefix('a/b', 'f', 'r')).toThrow(/name 'a\/b' must be a non-empty single path segment/);
    expect(() => runPrefix('a', '', 'r')).toThrow(/fingerprint/);
    expect(() => runPrefix('a', 'f', '..')).toThrow(/runId/);
  });
});
