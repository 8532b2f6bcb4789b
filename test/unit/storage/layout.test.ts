import { describe, expect, it } from 'vitest';
import { CANCELLED_MARKER, errorsName, MANIFEST_SHARDS, partName, planIdsKey, rowIndexKey } from '../../../src/storage/layout.js';

describe('run-folder names', () => {
  it('keeps five digits up to shard 99,999 and widens past it', () => {
    expect(partName(0)).toBe('part-00000.arrow');
    expect(partName(99_999, 'parquet')).toBe('part-99999.parquet');
    expect(partName(100_000)).toBe('part-100000.arrow');
    expect(partName(976_562)).toBe('part-976562.arrow');
    expect(errorsName(123_456)).toBe('errors-123456.arrow');
    expect(rowIndexKey('n/f/r', 100_000)).toBe('n/f/r/_index/hashes-100000.arrow');
  });

  it('names the plan files, the cancel marker and the manifest side file with a leading _, out of part-* globs', () => {
    expect(planIdsKey('n/f/r', 0)).toBe('n/f/r/_plan/ids-00000.arrow');
    expect(planIdsKey('n/f/r', 15_259)).toBe('n/f/r/_plan/ids-15259.arrow');
    expect(CANCELLED_MARKER).toBe('_CANCELLED');
    expect(MANIFEST_SHARDS).toBe('_manifest-shards.arrow');
  });
});
