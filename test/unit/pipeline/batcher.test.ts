import { describe, expect, it } from 'vitest';
import type { ResolvedJob } from '../../../src/config/resolved.js';
import { Batcher, TEXT_WINDOW_BATCHES } from '../../../src/pipeline/batcher.js';
import { prng } from '../../../src/types/prng.js';
import type { BatchResult, BatchTask } from '../../../src/workers/protocol.js';
import type { BatchRunner } from '../../../src/workers/batch-runner.js';

/** A pool that records each batch's texts and answers with each row's text length as its feature. */
class RecordingPool implements BatchRunner {
  readonly batches: string[][] = [];

  constructor(readonly threads = 2) {}

  async run(task: BatchTask): Promise<BatchResult> {
    if (task.input.kind !== 'text') throw new Error('expected a text batch');
    const texts = task.input.texts;
    this.batches.push(texts);
    return {
      ok: texts.map((_, i) => i),
      errors: [],
      taps: {
        len: { data: Float32Array.from(texts, (t) => t.length), shape: [1] },
        // ragged: as many items as characters, each holding its row's length
        chars: { data: Float32Array.from(texts.flatMap((t) => Array.from(t, () => t.length))), shape: [1], lengths: Int32Array.from(texts, (t) => t.length) },
      },
      backend: 'test',
      layout: 'nchw',
      decodeMs: 0,
      forwardMs: 0,
      truncated: 0,
      tokens: 0,
    };
  }

  takeBuffer(bytes: number): ArrayBuffer {
    return new ArrayBuffer(bytes);
  }
}

const TEXT_JOB = {
  model: { uri: '/m.onnx', backend: 'onnx', format: 'onnx' },
  taps: [
    { layer: 'x', at: 'output', as: 'len', reduce: 'mean', normalize: 'none', dtype: 'float32' },
    { layer: 'x', at: 'output', as: 'chars', reduce: 'none', normalize: 'none', dtype: 'float32' },
  ],
  inputShape: [],
  fingerprint: 'f',
  preprocess: null,
  batchSize: 4,
  text: { tokenizer: '/t.json', tokenizerHash: 'h', maxLength: 8, prefix: '', inputs: [{ name: 'input_ids', dtype: 'int64' }] },
} as unknown as ResolvedJob;

async function embed(groupByLength: boolean): Promise<{ pool: RecordingPool; ids: string[]; lengths: number[] }> {
  const pool = new RecordingPool();
  // 32 rows whose lengths go up and down, so that neighbours differ
  const texts = Array.from({ length: 32 }, (_, i) => 'x'.repeat(1 + ((i * 7) % 32)));
  const batcher = new Batcher(TEXT_JOB, pool, { shardRows: texts.length, groupByLength });
  const ids: string[] = [];
  const lengths: number[] = [];
  const take = async () => {
    const b = await batcher.next();
    ids.push(...b.rows.ids);
    lengths.push(...b.rows.taps['len']!.data);
  };
  for (const [i, text] of texts.entries()) {
    batcher.add({ id: String(i), kind: 'text', text }, i, `h${i}`);
    while (batcher.full) await take();
  }
  batcher.flush();
  while (batcher.pending > 0) await take();
  return { pool, ids, lengths };
}

describe('length grouping of text batches', () => {
  it('sorts each window by length, so batches pad little, and gives the rows back in source order', async () => {
    const grouped = await embed(true);
    expect(grouped.ids).toEqual(Array.from({ length: 32 }, (_, i) => String(i)));
    expect(grouped.lengths).toEqual(Array.from({ length: 32 }, (_, i) => 1 + ((i * 7) % 32)));
    // padding: every row of a batch costs as much as its longest
    const padded = (batches: string[][]) => batches.reduce((n, b) => n + b.length * Math.max(...b.map((t) => t.length)), 0);
    const plain = await embed(false);
    expect(plain.ids).toEqual(grouped.ids);
    for (const b of grouped.pool.batches) expect(b.map((t) => t.length)).toEqual([...b.map((t) => t.length)].sort((x, y) => x - y));
    expect(padded(grouped.pool.batches)).toBeLessThan(padded(plain.pool.batches) * 0.75);
  });
});

describe('a window of one batch', () => {
  // the window is sorted by length like any other; its rows must still come back in source order
  it.each([
    ['one thread, the last window of a shard', 1, 9, 9],
    ['one thread, a shard of one batch', 1, 3, 3],
    // the shard's other rows were error rows, which never reach the batcher
    ['two threads, a shard thinned by error rows', 2, 3, 8],
  ])('keeps each row its own features: %s', async (_, threads, rows, shardRows) => {
    const pool = new RecordingPool(threads);
    const texts = Array.from({ length: rows }, (_, i) => 'y'.repeat(1 + (((rows - i) * 5) % 11)));
    const batcher = new Batcher(TEXT_JOB, pool, { shardRows });
    const got: { ids: string[]; len: number[]; chars: number[][] } = { ids: [], len: [], chars: [] };
    const take = async () => {
      const b = await batcher.next();
      got.ids.push(...b.rows.ids);
      got.len.push(...b.rows.taps['len']!.data);
      const ragged = b.rows.taps['chars']!;
      let at = 0;
      for (const n of ragged.lengths!) {
        got.chars.push([...ragged.data.subarray(at, at + n)]);
        at += n;
      }
    };
    for (const [i, text] of texts.entries()) {
      batcher.add({ id: String(i), kind: 'text', text }, i, `h${i}`);
      while (batcher.full) await take();
    }
    batcher.flush();
    while (batcher.pending > 0) await take();
    expect(pool.batches.some((b) => b.length > 1)).toBe(true);
    expect(got.ids).toEqual(texts.map((_, i) => String(i)));
    expect(got.len).toEqual(texts.map((t) => t.length));
    expect(got.chars).toEqual(texts.map((t) => Array.from(t, () => t.length)));
  });
});

describe('the width of a text window', () => {
  it(`sorts ${TEXT_WINDOW_BATCHES} batches together, so that a batch's rows are close in length`, async () => {
    const pool = new RecordingPool(2);
    const job = { ...TEXT_JOB, batchSize: 32 } as ResolvedJob;
    // 640 rows of 1-200 characters in no order: a window of 16 batches of 32, then the rest
    const rand = prng(7);
    const texts = Array.from({ length: 640 }, () => 'z'.repeat(1 + Math.floor(rand() * 200)));
    const batcher = new Batcher(job, pool, { shardRows: texts.length });
    const ids: string[] = [];
    for (const [i, text] of texts.entries()) {
      batcher.add({ id: String(i), kind: 'text', text }, i, `h${i}`);
      while (batcher.full) ids.push(...(await batcher.next()).rows.ids);
    }
    batcher.flush();
    while (batcher.pending > 0) ids.push(...(await batcher.next()).rows.ids);
    expect(ids).toEqual(texts.map((_, i) => String(i)));
    expect(pool.batches.map((b) => b.length)).toEqual(Array.from({ length: 20 }, () => 32));
    // the first 16 batches are the first 512 rows sorted by length, cut in 32s
    const window = texts.slice(0, 512).map((t) => t.length);
    expect(pool.batches.slice(0, TEXT_WINDOW_BATCHES).flatMap((b) => b.map((t) => t.length))).toEqual([...window].sort((a, b) => a - b));
    // padded characters over real ones: about 1.06 here, where windows of 4 batches give about 1.2
    const padded = pool.batches.reduce((n, b) => n + b.length * Math.max(...b.map((t) => t.length)), 0);
    const real = texts.reduce((n, t) => n + t.length, 0);
    expect(padded / real).toBeLessThan(1.1);
  });
});
