import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJob, resolveJob } from '../../src/config/index.js';
import { writeNpy } from '../../src/sources/npy.js';
import { EmbedPool } from '../../src/workers/pool.js';
import { SEED_MODEL, tempDir } from '../helpers/index.js';

// Big tensor rows cross to the pool one buffer each ('rows'); the thread lays them out as one batch.
describe('pool rows input', () => {
  const pool = new EmbedPool({ threads: 1, backend: 'cpu' });
  afterAll(() => pool.close());

  it('detaches every row and gives the same features as one contiguous batch', async () => {
    const tmp = await tempDir();
    try {
      await writeNpy(join(tmp.dir, 'x.npy'), new Float32Array(28 * 28), [1, 28, 28, 1]);
      const job = await resolveJob(parseJob({ name: 't', source: { uri: join(tmp.dir, 'x.npy') }, model: { uri: SEED_MODEL, backend: 'cpu' }, taps: [{ layer: 'linear_1.0' }, { layer: 'conv_16.2' }], sink: { uri: tmp.dir } }));
      const model = { uri: job.model.uri, backend: 'cpu' as const, taps: job.taps, inputShape: job.inputShape, fingerprint: job.fingerprint, preprocess: null };
      const values = (r: number) => new Float32Array(28 * 28).map((_, i) => ((i * 7 + r * 13) % 101) / 101);
      const ids = ['0', '1', '2'];
      const rows = ids.map((_, r) => values(r));
      const batch = new Float32Array(3 * 28 * 28);
      rows.forEach((row, r) => batch.set(row, r * 28 * 28));

      const byRows = await pool.run({ model, input: { kind: 'rows', ids, rows } });
      expect(rows.every((row) => row.buffer.byteLength === 0)).toBe(true); // transferred
      const byBatch = await pool.run({ model, input: { kind: 'tensor', ids, data: batch } });
      expect(byRows.ok).toEqual([0, 1, 2]);
      expect(byRows.errors).toEqual([]);
      for (const col of ['linear_1_0', 'conv_16_2']) {
        expect(byRows.taps[col]!.shape).toEqual(byBatch.taps[col]!.shape);
        expect(Array.from(byRows.taps[col]!.data)).toEqual(Array.from(byBatch.taps[col]!.data));
      }
      // a second, shorter batch reuses the thread's buffer without leaking the first batch's rows
      const short = await pool.run({ model, input: { kind: 'rows', ids: ['2'], rows: [values(2)] } });
      expect(Array.from(short.taps.linear_1_0!.data)).toEqual(Array.from(byBatch.taps.linear_1_0!.data.subarray(2 * 64)));
    } finally {
      await tmp.remove();
    }
  });

  it('fails a batch whose row has the wrong size, naming it', async () => {
    const tmp = await tempDir();
    try {
      await writeNpy(join(tmp.dir, 'x.npy'), new Float32Array(28 * 28), [1, 28, 28, 1]);
      const job = await resolveJob(parseJob({ name: 't', source: { uri: join(tmp.dir, 'x.npy') }, model: { uri: SEED_MODEL, backend: 'cpu' }, taps: [{ layer: 'linear_1.0' }], sink: { uri: tmp.dir } }));
      const model = { uri: job.model.uri, backend: 'cpu' as const, taps: job.taps, inputShape: job.inputShape, fingerprint: job.fingerprint, preprocess: null };
      await expect(pool.run({ model, input: { kind: 'rows', ids: ['0', '1'], rows: [new Float32Array(784), new Float32Array(10)] } })).rejects.toThrow(
        'tensor row 1 has 10 values, expected 784',
      );
    } finally {
      await tmp.remove();
    }
  });
});
