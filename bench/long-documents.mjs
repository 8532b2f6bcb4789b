#!/usr/bin/env node
// Long documents: rows per second of `layertap run` on a JSONL of long texts, cut at maxLength
// (no chunking: each row's head only) and with preprocess.chunk (every part of every row), on
// the text fixture (maxLength 32). The fixture's model is tiny (4 layers, hidden 32), so the
// figures show what cutting rows into chunks costs beside the forward passes, at its largest;
// with a real model the forward passes take a greater share.
//
//   npm run build && node bench/long-documents.mjs [documents] [words per document] [runs]
//
// Needs Redis at REDIS_URL (default redis://127.0.0.1:6379). Prints one line per setting: the
// median of the runs after a warm-up run.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT, dist, median } from './lib/common.js';

const TEXT = join(ROOT, 'test', 'fixtures', 'text-model');
const [documents = 400, words = 600, runs = 3] = process.argv.slice(2).map(Number);

/** Sentences of the fixture's words, a few a document, as plain English prose reads. */
async function writeDocuments(file) {
  const sentences = (await readFile(join(TEXT, 'sentences.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).text);
  const pool = sentences.flatMap((s) => s.split(' '));
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
  const lines = [];
  for (let d = 0; d < documents; d++) {
    const w = [];
    for (let i = 0; i < words; i++) w.push(pool[next() % pool.length]);
    lines.push(JSON.stringify({ id: `doc-${d}`, text: w.join(' ') }));
  }
  await writeFile(file, lines.join('\n') + '\n');
}

const CHUNKS_AS_ROWS = 'the chunks of "tokens 32, overlap 0" as rows of their own (no chunking)';
const SETTINGS = [
  { label: 'cut at maxLength (no chunks)', preprocess: { maxLength: 32 } },
  { label: CHUNKS_AS_ROWS, preprocess: { maxLength: 32 } },
  { label: 'chunk tokens 32, overlap 0', preprocess: { maxLength: 32, chunk: { tokens: 32 } } },
  { label: 'chunk tokens 32, overlap 8', preprocess: { maxLength: 32, chunk: { tokens: 32, overlap: 8 } } },
  { label: 'chunk tokens 32, overlap 8, reduce mean', preprocess: { maxLength: 32, chunk: { tokens: 32, overlap: 8, reduce: 'mean' } } },
];

const dir = await mkdtemp(join(tmpdir(), 'layertap-bench-long-docs-'));
try {
  const data = join(dir, 'docs.jsonl');
  await writeDocuments(data);
  console.log(`${documents} documents of ${words} words (${((await readFile(data)).length / 1e6).toFixed(1)} MB), ${runs} run(s) after a warm-up, 2 threads`);
  const rowsFile = join(dir, 'chunk-rows.jsonl');
  {
    // the chunks of the second setting, cut here as a run cuts them, to embed as plain rows
    const { TextTokenizer } = await dist('preprocess/tokenize.js');
    const { TextChunker } = await dist('preprocess/chunk.js');
    const tokenizer = new TextTokenizer({
      tokenizer: join(TEXT, 'tokenizer.json'),
      tokenizerConfig: join(TEXT, 'tokenizer_config.json'),
      maxLength: 32,
      prefix: '',
    });
    const chunker = new TextChunker(tokenizer, '', { tokens: 32, overlap: 0 });
    const docs = (await readFile(data, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const started = performance.now();
    const rows = docs.flatMap((d) => chunker.split(d.text).map((c) => ({ id: `${d.id}#${c.chunk}`, text: d.text.slice(c.from, c.to) })));
    const ms = performance.now() - started;
    const mb = docs.reduce((a, d) => a + d.text.length, 0) / 1e6;
    console.log(
      `cutting alone (one thread, warm word cache after the first documents): ${rows.length} chunks in ${ms.toFixed(0)} ms, ${(mb / (ms / 1000)).toFixed(2)} MB/s`,
    );
    await writeFile(rowsFile, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
  for (const [i, s] of SETTINGS.entries()) {
    const job = join(dir, `job-${i}.json`);
    const rowsOfTheirOwn = s.label === CHUNKS_AS_ROWS;
    await writeFile(
      job,
      JSON.stringify({
        name: `long-docs-${i}`,
        source: { uri: rowsOfTheirOwn ? rowsFile : data, idColumn: 'id', inputColumn: 'text', carry: [] },
        model: { uri: join(TEXT, 'model.onnx') },
        preprocess: s.preprocess,
        taps: [{ layer: 'encoder.layer.3', reduce: 'mean', normalize: 'l2', as: 'emb' }],
        batchSize: 32,
        shardSize: 100,
        sink: { uri: join(dir, `out-${i}`) },
      }),
    );
    const seconds = [];
    let manifest = null;
    for (let r = 0; r <= runs; r++) {
      const env = { ...process.env, LAYERTAP_PREFIX: `bench-long-docs-${process.pid}-${i}-${r}` };
      const started = performance.now();
      const p = spawnSync(process.execPath, [CLI, 'run', job, '--threads', '2', '--json'], { env, encoding: 'utf8' });
      const wall = (performance.now() - started) / 1000;
      if (p.status !== 0) throw new Error(`${s.label}: exit ${p.status}\n${p.stderr.slice(-2000)}`);
      const summary = JSON.parse(p.stdout);
      manifest = JSON.parse(await readFile(summary.output.manifest, 'utf8'));
      if (r > 0) seconds.push(wall);
    }
    const t = median(seconds);
    const chunks = manifest.chunks ?? manifest.rows;
    const docs = manifest.documents ?? manifest.rows;
    console.log(
      `${s.label}: ${docs} source rows, ${manifest.rows} rows written, ${chunks} embedded, ${manifest.truncatedRows} truncated; ` +
        `${t.toFixed(2)} s (run command, wall), ${(docs / t).toFixed(1)} source rows/s, ${(chunks / t).toFixed(0)} embedded rows/s, ${(manifest.tokens / t).toFixed(0)} tokens/s`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
