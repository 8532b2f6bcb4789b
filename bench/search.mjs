#!/usr/bin/env node
// Search and map speed on runs of 384-d rows: `neighbours` (find the row, then an exact cosine
// scan of every part file on all cores), `search` (the scan after the query is embedded, plus
// the embedding of a text query with the text fixture's model), and `map` of 10^5 rows (PCA and
// UMAP). The runs' part files are written here directly (Arrow IPC, 1024 rows per part as a run's
// default shardSize), so no model runs to make them. Each figure is the median of the timed runs
// after a warm-up; the machine is recorded beside them.
//
//   npm run build && node bench/search.mjs [--sizes 100000,1000000] [--runs 3] [--umap-points 100000] [--keep DIR]
//
// Results: a table on stdout and bench/results/search-<time>.json.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Field, FixedSizeList, Float32, makeData, RecordBatch, Schema, Struct, Table, tableToIPC, Utf8 } from 'apache-arrow';
import { dist, load1, machine, median, prng, RESULTS, ROOT, spread } from './lib/common.js';

const DIM = 384;
const SHARD = 1024;
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const sizes = opt('--sizes', '100000,1000000').split(',').map(Number);
const runs = Number(opt('--runs', '3'));
// rows of the UMAP map (0: none); umap-js takes minutes at 10^5 rows on a loaded 2-core host
const umapPoints = Number(opt('--umap-points', '100000'));
const log = (line) => process.stderr.write(`${line}\n`);

const { openRun } = await dist('pipeline/search/run-ref.js');
const { neighbours, nearestRows } = await dist('pipeline/search/nearest.js');
const { mapRun } = await dist('pipeline/search/map.js');
const { embedQuery, queryJob } = await dist('pipeline/search/query.js');
const { ScanPool } = await dist('workers/scan-pool.js');
const { utf8Data, float32ListData } = await dist('sinks/arrow-data.js');

/** A committed run of `n` rows of DIM values (rows near 50 random centres), written part by part. */
async function writeRun(root, n) {
  const dir = path.join(root, `bench-${n}`, '00000000000bench0', `20261207T000000-n${n}`);
  await mkdir(dir, { recursive: true });
  const rand = prng(n);
  const centres = Array.from({ length: 50 }, () => Float32Array.from({ length: DIM }, () => rand() * 2 - 1));
  const listType = new FixedSizeList(DIM, new Field('item', new Float32(), false));
  const schema = new Schema([new Field('id', new Utf8(), false), new Field('text', new Utf8(), true), new Field('emb', listType, false)]);
  const shards = [];
  for (let s = 0, index = 0; s < n; s += SHARD, index++) {
    const rows = Math.min(SHARD, n - s);
    const values = new Float32Array(rows * DIM);
    for (let r = 0; r < rows; r++) {
      const c = centres[(s + r) % 50];
      for (let j = 0; j < DIM; j++) values[r * DIM + j] = c[j] + (rand() - 0.5);
    }
    const ids = Array.from({ length: rows }, (_, r) => `row-${s + r}`);
    const children = [utf8Data(ids), utf8Data(ids.map((id) => `text of ${id}`)), float32ListData(listType, rows, values)];
    const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children }));
    const file = path.join(dir, `part-${String(index).padStart(5, '0')}.arrow`);
    await writeFile(file, tableToIPC(new Table(schema, [batch]), 'file'));
    shards.push({ index, rows, errorRows: 0, file, errorsFile: null, bytes: 0, seconds: 0 });
  }
  const manifest = {
    runId: `20261207T000000-n${n}`,
    name: `bench-${n}`,
    fingerprint: '00000000000bench0',
    status: 'committed',
    model: { uri: 'none', format: 'onnx', backend: 'auto', runtime: 'onnx' },
    source: { uri: 'none', type: 'table' },
    preprocess: null,
    taps: [{ layer: 'pool', at: 'output', as: 'emb', reduce: 'none', normalize: 'none', dtype: 'float32', shape: [DIM], layout: 'pooled' }],
    rows: n,
    errorRows: 0,
    files: shards.map((s) => s.file),
    shards,
    failedShards: [],
    createdAt: new Date().toISOString(),
    seconds: 0,
  };
  await writeFile(path.join(dir, '_manifest.json'), JSON.stringify(manifest));
  await writeFile(path.join(dir, '_SUCCESS'), '');
  return dir;
}

/** Median seconds of `runs` timed calls after one warm-up. */
async function time(what, fn, n = runs) {
  await fn();
  const t = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    t.push((performance.now() - t0) / 1000);
  }
  log(`  ${what}: ${median(t).toFixed(3)} s (runs ${t.map((x) => x.toFixed(3)).join(', ')})`);
  return { median: median(t), spread: spread(t), runs: t };
}

const root = opt('--keep', null) ?? (await mkdtemp(path.join(tmpdir(), 'layertap-bench-search-')));
const results = { machine: machine(), load1Before: load1(), dim: DIM, shardSize: SHARD, sizes: {} };
const pool = new ScanPool();
try {
  for (const n of sizes) {
    log(`${n} rows x ${DIM}: writing part files`);
    const t0 = performance.now();
    const dir = await writeRun(root, n);
    log(`  written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const run = await openRun(dir);
    const query = new Float32Array(DIM).map((_, j) => Math.sin(j));
    const r = {};
    r.neighbours = await time('neighbours (find the row + exact scan, k=10)', () => neighbours(run, `row-${Math.floor(n / 2)}`, { pool, k: 10 }));
    r.scan = await time('search scan (exact cosine of a query vector, k=10)', () => nearestRows(run, query, { pool, k: 10 }));
    if (n <= 100_000) {
      r.mapPca = await time(`map ${Math.min(n, 100_000)} rows, pca`, () => mapRun(run, { pool, method: 'pca', maxPoints: 100_000 }), 2);
      if (umapPoints > 0) r.mapUmap = await time(`map ${umapPoints} rows, umap`, () => mapRun(run, { pool, method: 'umap', maxPoints: umapPoints }), 1);
    }
    results.sizes[n] = r;
  }
  // embedding the query: the part of `search` before the scan, with the text fixture's model
  // (a 4-layer encoder of width 32; a production encoder costs more per query)
  const textRun = process.env.LAYERTAP_BENCH_TEXT_RUN;
  if (textRun) {
    const run = await openRun(textRun);
    const job = await queryJob(run);
    results.embedQuery = await time('search: embed a text query with the run model (pool start, model load, forward)', () =>
      embedQuery(job, { text: 'The cat sat on the mat.' }, run.columns[0]),
    );
  }
} finally {
  await pool.close();
  if (!args.includes('--keep')) await rm(root, { recursive: true, force: true });
}
results.load1After = load1();
await mkdir(RESULTS, { recursive: true });
const file = path.join(RESULTS, `search-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(file, JSON.stringify(results, null, 2));
process.stdout.write(`${JSON.stringify(results)}\n`);
log(`results: ${path.relative(ROOT, file)}`);
