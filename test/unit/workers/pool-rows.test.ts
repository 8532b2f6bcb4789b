import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../../src/config/index.js';
import { resolveJob } from '../../../src/pipeline/index.js';
import { writeNpy } from '../../../src/sources/npy.js';
import { modelSpecOf } from '../../../src/workers/model-spec.js';
import { EmbedPool } from '../../../src/workers/pool.js';
import { SEED_MODEL, tempDir } from '../../helpers/index.js';

// Big tensor rows cross to the pool one buffer each ('rows'); the thread lays them out as one batch.
/** The seed model on the cpu backend with these taps, as a job over a 28x28x1 .npy would run it. */
async function seedSpec(taps: Array<{ layer: string; at?: 'input' | 'output' }>) {
  const tmp = await tempDir();
  try {
    await writeNpy(join(tmp.dir, 'x.npy'), new Float32Array(28 * 28), [1, 28, 28, 1]);
    return modelSpecOf(
      await resolveJob(
        parseJob({ name: 't', source: { uri: join(tmp.dir, 'x.npy') }, model: { uri: SEED_MODEL, backend: 'cpu' }, taps, sink: { uri: tmp.dir } }),
      ),
    );
  } finally {
    await tmp.remove();
  }
}

describe('pool rows input', () => {
  const pool = new EmbedPool({ threads: 1, backend: 'cpu' });
  afterAll(() => pool.close());

  it('detaches every row and gives the same features as one contiguous batch', async () => {
    const model = await seedSpec([{ layer: 'linear_1.0' }, { layer: 'conv_16.2' }]);
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
  });

  it('hands a tensor batch buffer back for the next read, and copies a tap that is a view of it', async () => {
    // a tap on the model's input: a backend may return the input itself as that activation
    const model = await seedSpec([{ layer: 'conv_16.0', at: 'input' }, { layer: 'linear_1.0' }]);
    const bytes = 2 * 28 * 28 * 4;
    const own = new EmbedPool({ threads: 1, backend: 'cpu' });
    try {
      const first = new Float32Array(own.takeBuffer(bytes)).map((_, i) => (i % 97) / 97);
      const expected = first.slice();
      expect(own.spareBuffers).toBe(0);
      const res = await own.run({ model, input: { kind: 'tensor', ids: ['0', '1'], data: first } });
      expect(first.buffer.byteLength).toBe(0); // transferred
      expect(own.spareBuffers).toBe(1); // and handed back
      expect((res as { input?: unknown }).input).toBeUndefined();
      expect(Array.from(res.taps.conv_16_0_input!.data)).toEqual(Array.from(expected));

      // the next batch is read into the handed-back buffer; the first batch's features stay as they were
      const again = own.takeBuffer(bytes);
      expect(own.spareBuffers).toBe(0);
      expect(new Float32Array(again)[1]).toBeCloseTo(1 / 97, 6); // the same memory, old contents
      const second = new Float32Array(again).fill(0.5);
      const res2 = await own.run({ model, input: { kind: 'tensor', ids: ['2', '3'], data: second } });
      expect(Array.from(res.taps.conv_16_0_input!.data)).toEqual(Array.from(expected));
      expect(res2.taps.conv_16_0_input!.data.every((v) => v === 0.5)).toBe(true);
      // a size nobody handed back is a new buffer
      expect(own.takeBuffer(100).byteLength).toBe(100);
      expect(own.spareBuffers).toBe(1);
    } finally {
      await own.close();
    }
  });

  it('leaves rows with NaN or Inf out of the batch as input errors, whichever way they come', async () => {
    const model = await seedSpec([{ layer: 'linear_1.0' }]);
    const values = (r: number) => new Float32Array(28 * 28).map((_, i) => ((i * 7 + r * 13) % 101) / 101);
    const good = await pool.run({ model, input: { kind: 'tensor', ids: ['0', '3'], data: Float32Array.from([...values(0), ...values(3)]) } });
    const rows = [0, 1, 2, 3].map(values);
    rows[1]![5] = Number.NaN;
    rows[2]![783] = Number.NEGATIVE_INFINITY;
    const why = 'NaN and Inf inputs give meaningless features';
    const want = [
      { index: 1, stage: 'input', message: `input value 5 of 784 is NaN; ${why}` },
      { index: 2, stage: 'input', message: `input value 783 of 784 is -Infinity; ${why}` },
    ];
    const batch = new Float32Array(4 * 784);
    rows.forEach((r, i) => batch.set(r, i * 784));
    for (const input of [
      { kind: 'rows' as const, ids: ['0', '1', '2', '3'], rows: rows.map((r) => r.slice()) },
      { kind: 'tensor' as const, ids: ['0', '1', '2', '3'], data: batch },
    ]) {
      const res = await pool.run({ model, input });
      expect(res.ok, input.kind).toEqual([0, 3]);
      expect(res.errors, input.kind).toEqual(want);
      expect(Array.from(res.taps.linear_1_0!.data), input.kind).toEqual(Array.from(good.taps.linear_1_0!.data));
    }
  });

  it('fails a batch whose row has the wrong size, naming it', async () => {
    const model = await seedSpec([{ layer: 'linear_1.0' }]);
    await expect(pool.run({ model, input: { kind: 'rows', ids: ['0', '1'], rows: [new Float32Array(784), new Float32Array(10)] } })).rejects.toThrow(
      'tensor row 1 has 10 values, expected 784',
    );
  });
});
