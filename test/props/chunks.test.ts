import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Table } from 'apache-arrow';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import type { ResolvedJob } from '../../src/config/resolved.js';
import { processShard, resolveJob } from '../../src/pipeline/index.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { createSource } from '../../src/sources/registry.js';
import type { ShardSpec } from '../../src/sources/types.js';
import { runPrefix } from '../../src/storage/layout.js';
import { EmbedPool } from '../../src/workers/pool.js';
import { tempDir } from '../helpers/index.js';
import { TEXT_DIR } from '../helpers/models.js';
import { propsRun } from '../helpers/props-settings.js';

// Long documents over random configurations: chunk sizes and overlaps against batch and shard
// sizes, threads, batches in flight and length grouping. For every case, each source row is
// written once, whole, in order: its chunks 0..n-1 cover its text, and each chunk row's features
// are those of its own text embedded alone (batch 1, one thread); with reduce: mean, the row's
// features are the token-weighted mean of those, then normalize.

const WORDS = ['the', 'cat', 'sat', 'on', 'mat.', 'Café', 'résumé', 'naïve:', 'hooks', 'keep', 'layer', '中间层输出', '🙂', 'x'.repeat(120), 'modèle,'];
const TAPS = [
  { layer: 'encoder.layer.3', reduce: 'mean' as const, as: 'mean' },
  { layer: 'encoder.layer.1', reduce: 'cls' as const, normalize: 'l2' as const, as: 'cls' },
];
const THREADS = [1, 2] as const;

interface Case {
  docs: string[];
  tokens: number;
  overlap: number;
  reduce: boolean;
  batchSize: number;
  shardSize: number;
  threads: number;
  maxInFlight: number | undefined;
  groupByLength: boolean;
}

const docArb = fc
  .oneof(
    { arbitrary: fc.array(fc.constantFrom(...WORDS), { minLength: 0, maxLength: 8 }), weight: 1 },
    { arbitrary: fc.array(fc.constantFrom(...WORDS), { minLength: 20, maxLength: 90 }), weight: 2 },
  )
  .map((w) => w.join(' '));

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    docs: fc.array(docArb, { minLength: 1, maxLength: 7 }),
    tokens: fc.integer({ min: 6, max: 32 }),
    overlapShare: fc.integer({ min: 0, max: 3 }),
    reduce: fc.boolean().map((b) => !b),
    batchSize: fc.integer({ min: 1, max: 9 }),
    shardSize: fc.integer({ min: 1, max: 8 }),
    threads: fc.constantFrom(...THREADS),
    maxInFlight: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
    groupByLength: fc.boolean().map((b) => !b),
  })
  // overlap: none, or up to half of the room past [CLS] and [SEP]
  .map(({ overlapShare, ...c }) => ({ ...c, overlap: Math.floor(((c.tokens - 3) * overlapShare) / 6) }));

type Vectors = Record<string, Float32Array>;

/** `v` as the tap's normalize leaves it. */
function normalized(v: Float32Array, tap: { normalize?: 'l2' | 'none' }): Float32Array {
  if (tap.normalize !== 'l2') return v;
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function rowsOf(tables: Table[], name: string): unknown[] {
  return tables.flatMap((t) => [...t.getChild(name)!]);
}

describe('long documents over the configuration space', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const pools = new Map<number, EmbedPool>();
  const jobs = new Map<string, ResolvedJob>();
  /** each text's features embedded alone, and its tokens */
  const alone = new Map<string, { vectors: Vectors; tokens: number }>();
  let cases = 0;

  beforeAll(async () => {
    tmp = await tempDir('layertap-props-chunks-');
    for (const t of THREADS) pools.set(t, new EmbedPool({ threads: t, onError: () => undefined }));
  });
  afterAll(async () => {
    await Promise.all([...pools.values()].map((p) => p.close()));
    await tmp?.remove();
  });

  const resolved = async (key: string, preprocess: object): Promise<ResolvedJob> => {
    let job = jobs.get(key);
    if (!job) {
      job = await resolveJob(
        parseJob({
          name: 'chunks',
          source: { uri: join(TEXT_DIR, 'sentences.jsonl'), idColumn: 'id', inputColumn: 'text' },
          model: { uri: join(TEXT_DIR, 'model.onnx') },
          preprocess: { maxLength: 32, ...preprocess },
          // the reference keeps the features before normalize, which a document's mean takes
          taps: key === 'plain' ? TAPS.map((t) => ({ ...t, normalize: 'none' as const })) : TAPS,
          sink: { uri: join(tmp.dir, 'unused') },
        }),
      );
      jobs.set(key, job);
    }
    return job;
  };

  /** Writes `texts` as a JSONL, processes it shard by shard as a worker does, and reads the part files back. */
  const embed = async (
    job: ResolvedJob,
    texts: string[],
    opts: { batchSize: number; shardSize: number; threads: number; maxInFlight?: number | undefined; groupByLength?: boolean },
  ) => {
    const dir = join(tmp.dir, `case-${cases++}`);
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'rows.jsonl');
    await writeFile(file, texts.map((text, i) => JSON.stringify({ id: `d${i}`, text })).join('\n') + '\n');
    const run: ResolvedJob = {
      ...job,
      source: { ...job.source, uri: file },
      batchSize: opts.batchSize,
      shardSize: opts.shardSize,
      sink: { uri: join(dir, 'out'), format: 'arrow' },
    };
    const source = await createSource(run.source);
    const shards: ShardSpec[] = [];
    for await (const s of source.plan(run.shardSize)) shards.push(s);
    await source.close();
    const pool = pools.get(opts.threads)!;
    for (const shard of shards) {
      await processShard(
        { runId: 'r', job: run, shard },
        { pool, maxInFlight: opts.maxInFlight, ...(opts.groupByLength !== undefined ? { groupByLength: opts.groupByLength } : {}) },
      );
    }
    const out = join(run.sink.uri, runPrefix(run.name, run.fingerprint, 'r'));
    const names = (await readdir(out)).filter((n) => /^part-\d+\.arrow$/.test(n)).sort();
    const tables = await Promise.all(names.map((n) => readPartFile(join(out, n))));
    await rm(dir, { recursive: true, force: true });
    return tables;
  };

  /** Each text embedded alone: batch 1, one thread; remembered. */
  const reference = async (texts: string[]): Promise<void> => {
    const missing = [...new Set(texts.filter((t) => !alone.has(t)))];
    if (missing.length === 0) return;
    const job = await resolved('plain', {});
    const tables = await embed(job, missing, { batchSize: 1, shardSize: missing.length, threads: 1 });
    const columns = Object.fromEntries(TAPS.map((t) => [t.as, rowsOf(tables, t.as).map((v) => Float32Array.from(v as Iterable<number>))]));
    const { TextTokenizer } = await import('../../src/preprocess/tokenize.js');
    const tokenizer = new TextTokenizer(job.text!);
    missing.forEach((t, i) =>
      alone.set(t, { vectors: Object.fromEntries(TAPS.map((tap) => [tap.as, columns[tap.as]![i]!])), tokens: tokenizer.encode([t]).ids[0]!.length }),
    );
  };

  const problems = async (c: Case): Promise<string[]> => {
    const found: string[] = [];
    const chunked = await resolved(`chunk-${c.tokens}-${c.overlap}`, { chunk: { tokens: c.tokens, overlap: c.overlap } });
    const tables = await embed(chunked, c.docs, c);
    const ids = rowsOf(tables, 'id') as string[];
    const text = rowsOf(tables, 'text') as string[];
    const chunk = rowsOf(tables, 'chunk') as number[];
    const start = rowsOf(tables, 'start') as number[];
    const end = rowsOf(tables, 'end') as number[];
    const features = Object.fromEntries(TAPS.map((t) => [t.as, rowsOf(tables, t.as).map((v) => Float32Array.from(v as Iterable<number>))]));
    await reference(text);
    // each document once, whole and in order, its chunks covering its text
    let r = 0;
    c.docs.forEach((doc, d) => {
      const points = Array.from(doc);
      let k = 0;
      for (; r < ids.length && ids[r] === `d${d}`; r++, k++) {
        if (chunk[r] !== k) found.push(`d${d}: row ${r} is chunk ${chunk[r]}, expected ${k}`);
        if (text[r] !== points.slice(start[r], end[r]).join('')) found.push(`d${d} chunk ${k}: text is not text[${start[r]}:${end[r]}]`);
        if (k === 0 && start[r] !== 0) found.push(`d${d} starts at ${start[r]}`);
        if (k > 0 && !(start[r]! > start[r - 1]! && start[r]! <= end[r - 1]!))
          found.push(`d${d} chunk ${k} starts at ${start[r]}, after [${start[r - 1]}, ${end[r - 1]})`);
        const a = alone.get(text[r]!)!;
        if (a.tokens > c.tokens) found.push(`d${d} chunk ${k} is ${a.tokens} tokens, more than ${c.tokens}`);
        for (const tap of TAPS) {
          const got = features[tap.as]![r]!;
          const want = normalized(a.vectors[tap.as]!, tap);
          const diff = Math.max(...got.map((x, j) => Math.abs(x - want[j]!)));
          if (!(diff <= 1e-5)) found.push(`d${d} chunk ${k} '${tap.as}': differs from its text alone by ${diff}`);
        }
      }
      if (k === 0) found.push(`d${d} has no rows`);
      else if (end[r - 1] !== points.length) found.push(`d${d} ends at ${end[r - 1]}, its text at ${points.length}`);
    });
    if (r !== ids.length) found.push(`${ids.length - r} rows after the last document`);
    if (!c.reduce) return found;

    // reduce: mean, against the chunks alone
    const mean = await resolved(`mean-${c.tokens}-${c.overlap}`, { chunk: { tokens: c.tokens, overlap: c.overlap, reduce: 'mean' } });
    const reduced = await embed(mean, c.docs, c);
    const rids = rowsOf(reduced, 'id') as string[];
    if (rids.join() !== c.docs.map((_, d) => `d${d}`).join()) found.push(`reduce mean wrote rows [${rids.join(', ')}]`);
    for (const tap of TAPS) {
      const got = rowsOf(reduced, tap.as).map((v) => Float32Array.from(v as Iterable<number>));
      c.docs.forEach((_, d) => {
        const mine = ids.flatMap((id, row) => (id === `d${d}` ? [alone.get(text[row]!)!] : []));
        const per = mine[0]!.vectors[tap.as]!.length;
        // the chunks' features before normalize, weighted by their tokens
        const sum = new Float64Array(per);
        let weight = 0;
        for (const m of mine) {
          weight += m.tokens;
          m.vectors[tap.as]!.forEach((x, j) => (sum[j]! += m.tokens * x));
        }
        const want = normalized(
          Float32Array.from(sum, (x) => x / weight),
          tap,
        );
        const diff = Math.max(...got[d]!.map((x, j) => Math.abs(x - want[j]!)));
        if (!(diff <= 1e-5)) found.push(`reduce mean d${d} '${tap.as}': differs from the token-weighted mean of its chunks by ${diff}`);
      });
    }
    return found;
  };

  const settings = propsRun<[Case]>('chunks', { numRuns: 25, budgetMs: 25_000 });
  it(
    'every row written once and whole, each chunk equal to its own text alone (chunk sizes, overlaps, batch and shard sizes, threads, batches in flight, length grouping, reduce mean)',
    async () => {
      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          const found = await problems(c);
          if (found.length > 0) throw new Error(`${JSON.stringify({ ...c, docs: c.docs.map((d) => d.length) })}\n${found.slice(0, 10).join('\n')}`);
        }),
        settings.parameters(),
      );
    },
    settings.timeoutMs,
  );
});
