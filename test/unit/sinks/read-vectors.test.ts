import { tableFromIPC, tableToIPC } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { carriedColumnNames, vectorColumn } from '../../../src/sinks/read-vectors.js';
import { readPartFile } from '../../../src/sinks/read-arrow.js';
import { tempDir } from '../../helpers/index.js';
import { writeRun } from '../../helpers/search-runs.js';
import { join } from 'node:path';

describe('vectorColumn', () => {
  it('gives a part file tap column as one row-major matrix, across record batches, and names the columns there are', async () => {
    const tmp = await tempDir();
    try {
      const vectors = Float32Array.from({ length: 5 * 3 }, (_, i) => i);
      const dir = await writeRun({ root: tmp.dir, ids: ['a', 'b', 'c', 'd', 'e'], vectors, dim: 3, carried: { text: ['1', '2', '3', '4', '5'] } });
      const one = await readPartFile(join(dir, 'part-00000.arrow'));
      expect(Array.from(vectorColumn(one, 'emb').data)).toEqual(Array.from(vectors));
      expect(carriedColumnNames(one, ['emb'])).toEqual(['text']);
      // two record batches, the second a slice of the file's rows
      const two = tableFromIPC(tableToIPC(one.slice(0, 2).concat(one.slice(2)), 'stream'));
      expect(two.batches.length).toBe(2);
      const m = vectorColumn(two, 'emb');
      expect({ rows: m.rows, dim: m.dim }).toEqual({ rows: 5, dim: 3 });
      expect(Array.from(m.data)).toEqual(Array.from(vectors));
      expect(() => vectorColumn(one, 'hidden')).toThrow("no column 'hidden'; vector columns are: emb");
      expect(() => vectorColumn(one, 'text')).toThrow("column 'text' is not a fixed-size vector column (Utf8); vector columns are: emb");
    } finally {
      await tmp.remove();
    }
  });
});
