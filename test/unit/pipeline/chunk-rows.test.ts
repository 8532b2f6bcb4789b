import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ResolvedJob } from '../../../src/config/resolved.js';
import type { EmbeddedBatch } from '../../../src/pipeline/batcher.js';
import { ChunkedDocuments, type ChunkInput } from '../../../src/pipeline/chunk-rows.js';
import { TextChunker } from '../../../src/preprocess/chunk.js';
import { TextTokenizer } from '../../../src/preprocess/tokenize.js';
import { TEXT_DIR } from '../../helpers/models.js';

const TEXT = {
  tokenizer: path.join(TEXT_DIR, 'tokenizer.json'),
  tokenizerConfig: path.join(TEXT_DIR, 'tokenizer_config.json'),
  tokenizerHash: 'h',
  maxLength: 32,
  prefix: '',
  inputs: [{ name: 'input_ids' as const, dtype: 'int64' as const }],
};

function job(reduce: boolean): ResolvedJob {
  return {
    taps: [{ layer: 'x', at: 'output', as: 'v', reduce: 'mean', normalize: reduce ? 'l2' : 'none', dtype: 'float32' }],
    carry: [{ name: 'text', type: 'utf8', input: true }],
    text: { ...TEXT, chunk: { tokens: 10, overlap: 0, ...(reduce ? { reduce: 'mean' as const } : {}) } },
  } as unknown as ResolvedJob;
}

const DOCS = [
  'the cat sat on the mat the dog ran to the park in the morning the cat sat on the mat',
  'short',
  'hooks keep the output of a middle layer for every token and the cat sat on the mat',
];

/** The documents' chunk rows, as the reader hands them to the batcher. */
function expand(docs: ChunkedDocuments): ChunkInput[] {
  return DOCS.flatMap((text, pos) => docs.expand({ id: `d${pos}`, kind: 'text', text }, pos, [text]));
}

/**
 * The batcher's result for `rows` (chunk rows, by their seq): feature [seq, 1] each, except those
 * in `failing`, which come back as error rows.
 */
function batch(rows: ChunkInput[], failing: Set<number> = new Set()): EmbeddedBatch {
  const ok = rows.filter((r) => !failing.has(r.seq));
  return {
    rows: {
      pos: ok.map((r) => r.seq),
      ids: ok.map((r) => r.row.id),
      hashes: ok.map((r) => `h-${r.row.id}`),
      taps: { v: { data: Float32Array.from(ok.flatMap((r) => [r.seq, 1])), shape: [2] } },
      extra: ok.map((r) => r.extra),
    },
    errors: rows.filter((r) => failing.has(r.seq)).map((r) => ({ pos: r.seq, id: r.row.id, stage: 'features', message: 'features contain NaN or Inf' })),
    last: Math.max(-1, ...rows.map((r) => r.seq)),
    runtime: { backend: 'test', layout: 'nchw' },
  };
}

function chunker(): TextChunker {
  return new TextChunker(new TextTokenizer(TEXT), '', { tokens: 10, overlap: 0 });
}

describe('ChunkedDocuments', () => {
  it('gives each document back whole, in order, whatever batches its chunks fell in', () => {
    const docs = new ChunkedDocuments(job(false), chunker());
    const rows = expand(docs);
    // d0 has 3 chunks, d1 one, d2 3
    expect(rows.map((r) => r.row.id)).toEqual(['d0', 'd0', 'd0', 'd1', 'd2', 'd2', 'd2']);
    // batches of 2: the first ends inside d0, the third inside d2, whose rows wait for the fourth
    const out = [0, 2, 4, 6].map((at) => docs.collect(batch(rows.slice(at, at + 2))));
    expect(out.map((b) => b.rows.ids)).toEqual([[], ['d0', 'd0', 'd0', 'd1'], [], ['d2', 'd2', 'd2']]);
    // rows up to `last` are whole: carried rows up to it may be merged in
    expect(out.map((b) => b.last)).toEqual([-1, 1, 1, 2]);
    expect(out.flatMap((b) => b.rows.pos)).toEqual([0, 0, 0, 1, 2, 2, 2]);
    // each chunk row's values: its text (the chunk's own), chunk, start, end
    expect(out[1]!.rows.extra.map((e) => e.slice(1))).toEqual([
      [0, 0, 30],
      [1, 30, 65],
      [2, 65, 84],
      [0, 0, 5],
    ]);
    expect(out[1]!.rows.extra[1]![0]).toBe(DOCS[0]!.slice(30, 65));
    expect(Array.from(out[3]!.rows.taps['v']!.data)).toEqual([4, 1, 5, 1, 6, 1]);
    expect(docs.settled).toBe(true);
    expect(docs.chunks).toBe(7);
  });

  it('makes a document with a chunk that failed one error row, and writes none of its chunks', () => {
    const docs = new ChunkedDocuments(job(false), chunker());
    const rows = expand(docs);
    const first = docs.collect(batch(rows.slice(0, 4), new Set([1])));
    const second = docs.collect(batch(rows.slice(4)));
    expect(first.rows.ids).toEqual(['d1']);
    expect(first.errors).toEqual([{ pos: 0, id: 'd0', stage: 'features', message: 'chunk 1 of 3: features contain NaN or Inf' }]);
    expect(second.rows.ids).toEqual(['d2', 'd2', 'd2']);
    expect(docs.settled).toBe(true);
  });

  it('with reduce: mean, writes one row per document: its chunks weighted by their tokens, then l2', () => {
    const docs = new ChunkedDocuments(job(true), chunker());
    const rows = expand(docs);
    const tokens = DOCS.flatMap((text) =>
      chunker()
        .split(text)
        .map((c) => c.tokens),
    );
    const out = [0, 2, 4, 6].map((at) => docs.collect(batch(rows.slice(at, at + 2))));
    expect(out.flatMap((b) => b.rows.ids)).toEqual(['d0', 'd1', 'd2']);
    // the whole text, once per document
    expect(out.flatMap((b) => b.rows.extra)).toEqual(DOCS.map((d) => [d]));
    const got = out.flatMap((b) => Array.from(b.rows.taps['v']?.data ?? []));
    const want = [[0, 1, 2], [3], [4, 5, 6]].flatMap((seqs) => {
      const w = seqs.reduce((a, s) => a + tokens[s]!, 0);
      const x = seqs.reduce((a, s) => a + tokens[s]! * s, 0) / w;
      const norm = Math.hypot(x, 1);
      return [x / norm, 1 / norm];
    });
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    expect(docs.settled).toBe(true);
  });
});
