import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Table } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob, type JobInput } from '../../src/config/index.js';
import { TextTokenizer } from '../../src/preprocess/tokenize.js';
import { runJob } from '../../src/queue/index.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { maxAbsDiff, REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';
import { TEXT_DIR } from '../helpers/models.js';

interface Doc {
  id: string;
  text: string;
}

/** A seeded generator (mulberry32), so that the long texts are the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The fixture's sentences, and long documents made of their words (with CJK, an emoji, a word of 300 letters, runs of spaces). */
async function documents(): Promise<Doc[]> {
  const sentences = (await readFile(join(TEXT_DIR, 'sentences.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Doc);
  const words = sentences.flatMap((s) => s.text.split(' '));
  const next = random(20);
  const long = (n: number): string => Array.from({ length: n }, (_, i) => (i % 37 === 36 ? '  ' : '') + words[Math.floor(next() * words.length)]!).join(' ');
  return [
    ...sentences,
    { id: 'long-a', text: long(120) },
    { id: 'long-b', text: long(400) },
    { id: 'empty', text: '' },
    { id: 'long-c', text: `${long(30)} ${'x'.repeat(300)} ${long(20)} 中间层输出中间层输出中间层输出中间层输出中间层输出 🙂🙂🙂 ${long(10)}` },
    { id: 'long-d', text: long(64) },
  ];
}

async function writeJsonl(file: string, rows: object[]): Promise<void> {
  await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

async function readRun(files: string[]): Promise<Table[]> {
  return Promise.all(files.map((f) => readPartFile(f)));
}

/** Every row of a run's column, in order. */
function column<T>(tables: Table[], name: string): T[] {
  return tables.flatMap((t) => {
    const c = t.getChild(name);
    if (!c) throw new Error(`no column ${name}`);
    return [...c] as T[];
  });
}

function vectors(tables: Table[], name: string): Float32Array[] {
  return column<Iterable<number>>(tables, name).map((v) => Float32Array.from(v));
}

const TAPS: JobInput['taps'] = [
  { layer: 'encoder.layer.3', reduce: 'mean', as: 'mean3' },
  { layer: 'encoder.layer.1', reduce: 'cls', as: 'cls1' },
  { layer: 'encoder.layer.2', reduce: 'max', normalize: 'l2', as: 'max2' },
  { layer: 'pooler', as: 'pooler' },
];
const COLUMNS = ['mean3', 'cls1', 'max2', 'pooler'];

describe('long documents: preprocess.chunk', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  let docs: Doc[];
  const tokenizer = new TextTokenizer({
    tokenizer: join(TEXT_DIR, 'tokenizer.json'),
    tokenizerConfig: join(TEXT_DIR, 'tokenizer_config.json'),
    maxLength: 32,
    prefix: '',
  });

  beforeAll(async () => {
    tmp = await tempDir();
    docs = await documents();
    await writeJsonl(join(tmp.dir, 'docs.jsonl'), docs);
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  const run = async (name: string, input: Partial<JobInput> & { source: JobInput['source'] }, threads = 2) => {
    const job = parseJob({
      name,
      model: { uri: join(TEXT_DIR, 'model.onnx') },
      taps: TAPS,
      batchSize: 3,
      shardSize: 4,
      sink: { uri: join(tmp.dir, `out-${name}`) },
      ...input,
    });
    const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads });
    expect(summary.status).toBe('committed');
    const manifest = JSON.parse(await readFile(summary.output.manifest!, 'utf8')) as Record<string, unknown>;
    return { summary, manifest, tables: await readRun(summary.output.files) };
  };

  const settings = [
    { tokens: 16, overlap: 4, batchSize: 3, shardSize: 4, threads: 2 },
    { tokens: 12, overlap: 0, batchSize: 5, shardSize: 7, threads: 1 },
    { tokens: 32, overlap: 10, batchSize: 2, shardSize: 3, threads: 2 },
  ];

  it.each(settings)(
    'embeds each chunk as its own text alone (chunks of $tokens tokens, overlap $overlap, batches of $batchSize, shards of $shardSize)',
    async ({ tokens, overlap, batchSize, shardSize, threads }) => {
      const chunked = await run(
        `chunks-${tokens}-${overlap}`,
        { source: { uri: join(tmp.dir, 'docs.jsonl'), idColumn: 'id', inputColumn: 'text' }, preprocess: { chunk: { tokens, overlap } }, batchSize, shardSize },
        threads,
      );
      const t = chunked.tables;
      const ids = column<string>(t, 'id');
      const chunk = column<number>(t, 'chunk');
      const start = column<number>(t, 'start');
      const end = column<number>(t, 'end');
      const text = column<string>(t, 'text');
      expect(t[0]!.schema.fields.map((f) => f.name)).toEqual(['id', 'text', 'chunk', 'start', 'end', ...COLUMNS]);

      // every document in order, its chunks 0..n-1, covering its text from its start to its end
      const byDoc = new Map<string, number[]>();
      ids.forEach((id, r) => byDoc.set(id, [...(byDoc.get(id) ?? []), r]));
      expect([...byDoc.keys()]).toEqual(docs.map((d) => d.id));
      let moreThanOne = 0;
      for (const d of docs) {
        const rows = byDoc.get(d.id)!;
        const points = Array.from(d.text);
        expect(rows.map((r) => chunk[r])).toEqual(rows.map((_, k) => k));
        expect(start[rows[0]!]).toBe(0);
        expect(end[rows.at(-1)!]).toBe(points.length);
        rows.forEach((r, k) => {
          // start and end are code points; the text column holds the chunk's own text
          expect(text[r]).toBe(points.slice(start[r], end[r]).join(''));
          const ids = tokenizer.encode([text[r]!]);
          expect(ids.truncated).toBe(0);
          expect(ids.ids[0]!.length).toBeLessThanOrEqual(tokens);
          // cut between words (before a space after a word), or inside a word longer than a chunk, where the chunk before ends
          const between = (at: number): boolean => at === 0 || at === points.length || (points[at] === ' ' && !/\s/.test(points[at - 1]!));
          if (!between(start[r]!)) expect(start[r]).toBe(end[rows[k - 1]!]);
          if (!between(end[r]!)) expect(start[rows[k + 1]!]).toBe(end[r]);
          if (k > 0) {
            const prev = rows[k - 1]!;
            expect(start[r]!).toBeGreaterThan(start[prev]!);
            expect(start[r]!).toBeLessThanOrEqual(end[prev]!);
            if (overlap === 0) expect(start[r]).toBe(end[prev]);
          }
        });
        if (rows.length > 1) moreThanOne++;
      }
      expect(moreThanOne).toBeGreaterThanOrEqual(4);
      expect(chunked.manifest['truncatedRows']).toBe(0);
      expect(chunked.manifest['documents']).toBe(docs.length);
      expect(chunked.manifest['chunks']).toBe(ids.length);
      expect(chunked.manifest['rows']).toBe(ids.length);

      // the reference: each chunk's text as a row of its own, not chunked
      const alone = join(tmp.dir, `alone-${tokens}-${overlap}.jsonl`);
      await writeJsonl(
        alone,
        ids.map((id, r) => ({ id: `${id}#${chunk[r]}`, text: text[r] })),
      );
      const reference = await run(`alone-${tokens}-${overlap}`, { source: { uri: alone, idColumn: 'id', inputColumn: 'text' }, batchSize: 4, shardSize: 5 });
      expect(column<string>(reference.tables, 'id')).toEqual(ids.map((id, r) => `${id}#${chunk[r]}`));
      expect(reference.manifest['truncatedRows']).toBe(0);
      let worst = 0;
      for (const c of COLUMNS) {
        const got = vectors(t, c);
        const want = vectors(reference.tables, c);
        got.forEach((v, r) => (worst = Math.max(worst, maxAbsDiff(v, want[r]!))));
      }
      expect(worst).toBeLessThanOrEqual(1e-5);
      console.log(
        `chunks of ${tokens} (overlap ${overlap}): ${docs.length} documents, ${ids.length} chunks; in document vs alone: max abs diff ${worst.toExponential(2)}`,
      );
    },
  );

  it("a chunk row's text column is its chunk's text when the table's text column is found, not named", async () => {
    const file = join(tmp.dir, 'bodies.jsonl');
    await writeJsonl(
      file,
      docs.map((d) => ({ id: d.id, body: d.text })),
    );
    const { tables } = await run('bodies', { source: { uri: file, idColumn: 'id' }, taps: [TAPS![0]!], preprocess: { chunk: { tokens: 16 } } });
    expect(tables[0]!.schema.fields.map((f) => f.name)).toEqual(['id', 'body', 'chunk', 'start', 'end', 'mean3']);
    const body = column<string>(tables, 'body');
    const ids = column<string>(tables, 'id');
    const start = column<number>(tables, 'start');
    const end = column<number>(tables, 'end');
    ids.forEach((id, r) =>
      expect(body[r]).toBe(
        Array.from(docs.find((d) => d.id === id)!.text)
          .slice(start[r], end[r])
          .join(''),
      ),
    );
    expect(new Set(ids).size).toBeLessThan(ids.length);
  });

  it('reduce: mean writes one row per document, the token-weighted mean of its chunks, then normalize', async () => {
    const source = { uri: join(tmp.dir, 'docs.jsonl'), idColumn: 'id', inputColumn: 'text' };
    const chunk = { tokens: 16, overlap: 4 };
    // the chunks' own features, none normalized
    const plain = TAPS!.map((t) => ({ ...t, normalize: 'none' as const }));
    const perChunk = await run('mean-ref', { source, taps: plain, preprocess: { chunk } });
    const mean = await run('mean', { source, preprocess: { chunk: { ...chunk, reduce: 'mean' } } });
    const t = mean.tables;
    expect(t[0]!.schema.fields.map((f) => f.name)).toEqual(['id', 'text', ...COLUMNS]);
    expect(column<string>(t, 'id')).toEqual(docs.map((d) => d.id));
    // with reduce: mean the text column holds the whole document
    expect(column<string>(t, 'text')).toEqual(docs.map((d) => d.text));
    const ids = column<string>(perChunk.tables, 'id');
    const texts = column<string>(perChunk.tables, 'text');
    const weights = texts.map((x) => tokenizer.encode([x]).ids[0]!.length);
    let worst = 0;
    for (const tap of TAPS!) {
      const chunks = vectors(perChunk.tables, tap.as!);
      const got = vectors(t, tap.as!);
      docs.forEach((d, i) => {
        const want = new Float64Array(chunks[0]!.length);
        let weight = 0;
        ids.forEach((id, r) => {
          if (id !== d.id) return;
          weight += weights[r]!;
          chunks[r]!.forEach((x, j) => (want[j]! += weights[r]! * x));
        });
        const ref = Float32Array.from(want, (x) => x / weight);
        if (tap.normalize === 'l2') {
          const norm = Math.hypot(...ref);
          ref.forEach((x, j) => (ref[j] = x / norm));
        }
        worst = Math.max(worst, maxAbsDiff(got[i]!, ref));
      });
    }
    expect(worst).toBeLessThanOrEqual(1e-5);
    expect(mean.manifest['documents']).toBe(docs.length);
    expect(mean.manifest['chunks']).toBe(ids.length);
    expect(mean.manifest['rows']).toBe(docs.length);
    console.log(`reduce mean: ${docs.length} documents of ${ids.length} chunks; max abs diff to the reference ${worst.toExponential(2)}`);
  });

  it('carries chunk rows over by the document hash in an incremental run; a changed document is embedded again', async () => {
    const source = { uri: join(tmp.dir, 'docs-inc.jsonl'), idColumn: 'id', inputColumn: 'text' };
    const job = { source, preprocess: { chunk: { tokens: 16, overlap: 4 } }, incremental: true, shardSize: 5 };
    await writeJsonl(source.uri, docs);
    const first = await run('inc', job);
    const second = await run('inc', job);
    const rows = (first.manifest['rows'] as number) ?? 0;
    expect(second.manifest['incremental']).toMatchObject({ carriedRows: rows, embeddedRows: 0 });
    for (const c of ['id', 'text', 'chunk', 'start', 'end']) expect(column(second.tables, c)).toEqual(column(first.tables, c));
    for (const c of COLUMNS) expect(vectors(second.tables, c)).toEqual(vectors(first.tables, c));

    // one document changed: its chunks are embedded again, every other row is carried
    const changed = docs.map((d) => (d.id === 'long-a' ? { ...d, text: `${d.text} and the cat sat on the mat again` } : d));
    await writeJsonl(source.uri, changed);
    const third = await run('inc', job);
    const fresh = await run('inc-fresh', { ...job, incremental: false });
    const ids = column<string>(third.tables, 'id');
    const changedRows = ids.filter((id) => id === 'long-a').length;
    expect(third.manifest['incremental']).toMatchObject({ carriedRows: ids.length - changedRows, embeddedRows: changedRows });
    for (const c of ['id', 'text', 'chunk', 'start', 'end']) expect(column(third.tables, c)).toEqual(column(fresh.tables, c));
    for (const c of COLUMNS) {
      const want = vectors(fresh.tables, c);
      vectors(third.tables, c).forEach((v, r) => expect(maxAbsDiff(v, want[r]!)).toBeLessThanOrEqual(1e-6));
    }
    expect(third.manifest['documents']).toBe(docs.length);

    // reduce: mean carries a document's one row over the same way
    const mean = { ...job, preprocess: { chunk: { tokens: 16, overlap: 4, reduce: 'mean' as const } } };
    const m1 = await run('inc-mean', mean);
    const m2 = await run('inc-mean', mean);
    expect(m2.manifest['incremental']).toMatchObject({ carriedRows: docs.length, embeddedRows: 0 });
    for (const c of COLUMNS) expect(vectors(m2.tables, c)).toEqual(vectors(m1.tables, c));
    expect(column(m2.tables, 'text')).toEqual(changed.map((d) => d.text));
  });
});
