#!/usr/bin/env node
// LanceDB write throughput next to Arrow's (and Parquet's) on the same rows: the part files of a
// run (shards of 1024 rows written as a run writes them: PartWriter over a local sink, committed
// atomically), then the LanceDB commit of those staged parts (a first run, which creates the
// table, and a re-run of the same rows, which merges every row on `id`). Rows are 384-d float32
// vectors plus a utf8 id, as a MiniLM-sized text embedding. A warm-up, then several timed runs;
// medians reported. Not a test: nothing here is asserted.
//
//   npm run build
//   node bench/lancedb.mjs                      # 100,000 rows, 3 runs
//   node bench/lancedb.mjs --rows 20000 --runs 5 --json
//   node bench/lancedb.mjs --dir /dev/shm       # where the run folder and the table go (default: the OS temp dir)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const DIST = new URL('../dist/', import.meta.url).href;
const { PartWriter } = await import(`${DIST}sinks/part-writer.js`);
const { buildSchema } = await import(`${DIST}sinks/arrow-schema.js`);
const { LocalSink } = await import(`${DIST}storage/local-sink.js`);
const { LanceDbDestination } = await import(`${DIST}sinks/lancedb-table.js`);
const { readPartFile } = await import(`${DIST}sinks/read-arrow.js`);

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROWS = opt('--rows', 100_000);
const RUNS = opt('--runs', 3);
const DIM = 384;
const SHARD = 1024;
const BATCH = 256;
const JSON_OUT = args.includes('--json');
const DIR = args.includes('--dir') ? args[args.indexOf('--dir') + 1] : tmpdir();

const tap = { layer: 'pooler', at: 'output', as: 'embedding', reduce: 'none', normalize: 'l2', dtype: 'float32' };
const schema = buildSchema({
  taps: [tap],
  shapes: { embedding: [DIM] },
  layout: 'nhwc',
  text: true,
  fingerprint: 'bench',
  model: 'bench',
  runtime: 'bench',
  version: 'bench',
  runId: 'bench',
});

// the rows: deterministic unit vectors, made once and shared by every measurement
const values = new Float32Array(ROWS * DIM);
for (let i = 0; i < ROWS; i++) {
  let n = 0;
  for (let k = 0; k < DIM; k++) {
    const v = Math.sin(i * 0.0137 + k * 1.31) + Math.cos(i * 0.71 * (k + 1));
    values[i * DIM + k] = v;
    n += v * v;
  }
  n = Math.sqrt(n);
  for (let k = 0; k < DIM; k++) values[i * DIM + k] /= n;
}
const ids = Array.from({ length: ROWS }, (_, i) => `doc-${String(i).padStart(7, '0')}`);
const bytes = ROWS * DIM * 4;

/** Writes the run's part files in `dir` as shards do; returns seconds. */
async function writeParts(dir, format) {
  const sink = new LocalSink(dir);
  const t0 = performance.now();
  for (let s = 0; s * SHARD < ROWS; s++) {
    const ext = format === 'parquet' ? 'parquet' : 'arrow';
    const w = await PartWriter.open(await sink.createWriter(`run/part-${String(s).padStart(5, '0')}.${ext}`), schema, format);
    for (let r = s * SHARD; r < Math.min(ROWS, (s + 1) * SHARD); r += BATCH) {
      const end = Math.min(r + BATCH, (s + 1) * SHARD, ROWS);
      await w.writeBatch(ids.slice(r, end), { embedding: { shape: [DIM], data: values.subarray(r * DIM, end * DIM) } });
    }
    await w.close();
  }
  return (performance.now() - t0) / 1000;
}

/** The staged parts of `dir` as the table destination receives them at finalize. */
function stagedRun(dir) {
  const shards = [];
  for (let s = 0; s * SHARD < ROWS; s++) {
    shards.push({
      index: s,
      rows: Math.min(SHARD, ROWS - s * SHARD),
      async *batches() {
        yield* (await readPartFile(path.join(dir, 'run', `part-${String(s).padStart(5, '0')}.arrow`))).batches;
      },
    });
  }
  return { runId: 'bench', fingerprint: 'bench', rows: ROWS, shards };
}

async function lanceCommit(dbDir, run) {
  const dest = await LanceDbDestination.open({ uri: dbDir, table: 'bench' });
  const t0 = performance.now();
  try {
    const c = await dest.commit(run);
    if (c.rows !== ROWS) throw new Error(`table has ${c.rows} rows, expected ${ROWS}`);
  } finally {
    await dest.close();
  }
  return (performance.now() - t0) / 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { arrow: [], parquet: [], lanceCreate: [], lanceMerge: [] };
for (let run = 0; run <= RUNS; run++) {
  const dir = await mkdtemp(path.join(DIR, 'layertap-bench-lance-'));
  try {
    const arrow = await writeParts(dir, 'arrow');
    const parquet = await writeParts(dir, 'parquet');
    const staged = stagedRun(dir);
    const db = path.join(dir, 'db');
    const create = await lanceCommit(db, staged);
    const merge = await lanceCommit(db, staged);
    // run 0 is the warm-up
    if (run > 0) {
      results.arrow.push(arrow);
      results.parquet.push(parquet);
      results.lanceCreate.push(create);
      results.lanceMerge.push(merge);
    }
    process.stderr.write(
      `${run === 0 ? 'warm-up' : `run ${run}`}: arrow ${arrow.toFixed(2)} s, parquet ${parquet.toFixed(2)} s, lancedb create ${create.toFixed(2)} s, merge ${merge.toFixed(2)} s\n`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const row = (name, secs) => {
  const s = median(secs);
  return { name, seconds: s, rowsPerSecond: ROWS / s, mbPerSecond: bytes / 1e6 / s, vsArrow: median(results.arrow) / s };
};
const table = [
  row('arrow part files', results.arrow),
  row('parquet part files', results.parquet),
  row('lancedb commit, new table', results.lanceCreate),
  row('lancedb commit, merge of the same rows', results.lanceMerge),
];
if (JSON_OUT) {
  process.stdout.write(JSON.stringify({ rows: ROWS, dim: DIM, runs: RUNS, dir: DIR, results: table }) + '\n');
} else {
  console.log(`${ROWS} rows x ${DIM} float32 (${(bytes / 1e6).toFixed(0)} MB of vectors) in ${DIR}, median of ${RUNS} runs after a warm-up`);
  for (const r of table) {
    console.log(
      `${r.name.padEnd(40)} ${r.seconds.toFixed(2).padStart(7)} s ${Math.round(r.rowsPerSecond).toString().padStart(9)} rows/s ${r.mbPerSecond.toFixed(0).padStart(5)} MB/s  ${r.vsArrow.toFixed(2)}x arrow`,
    );
  }
}
