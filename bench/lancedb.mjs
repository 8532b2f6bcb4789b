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
//   node bench/lancedb.mjs --e2e 4000           # also whole runs of the text fixture model, format arrow vs lancedb
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
const E2E = opt('--e2e', 0);

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

/** Commits `run` into the table; seconds and the table version it leaves. */
async function lanceCommit(dbDir, run) {
  const dest = await LanceDbDestination.open({ uri: dbDir, table: 'bench' });
  const t0 = performance.now();
  let version;
  try {
    const c = await dest.commit(run);
    if (c.rows !== ROWS) throw new Error(`table has ${c.rows} rows, expected ${ROWS}`);
    version = c.version;
  } finally {
    await dest.close();
  }
  return { seconds: (performance.now() - t0) / 1000, version };
}

/** Whole runs of the text fixture model (`E2E` rows, one tap), format arrow and lancedb, interleaved; seconds per run. */
async function endToEnd() {
  const { writeFile } = await import('node:fs/promises');
  const { parseJob } = await import(`${DIST}index.js`);
  const { runJob } = await import(`${DIST}queue/run.js`);
  const { benchRedis } = await import('./lib/pipeline.js');
  const { dropPrefix } = await import('./lib/common.js');
  const redis = await benchRedis(() => undefined);
  const dir = await mkdtemp(path.join(DIR, 'layertap-bench-lance-e2e-'));
  const fixture = new URL('../test/fixtures/text-model/', import.meta.url).pathname;
  const words = ['cat', 'river', 'token', 'stone', 'music', 'paper', 'light', 'green', 'layer', 'cloud'];
  const rows = Array.from({ length: E2E }, (_, i) =>
    JSON.stringify({ id: `d${i}`, text: `${words[i % 10]} ${words[(i * 7) % 10]} number ${i} ${words[(i * 3) % 10]}` }),
  );
  await writeFile(path.join(dir, 'docs.jsonl'), rows.join('\n') + '\n');
  const times = { arrow: [], lancedb: [] };
  try {
    for (let r = 0; r <= RUNS; r++) {
      for (const format of ['arrow', 'lancedb']) {
        const job = parseJob({
          name: `e2e${r}`,
          source: { uri: path.join(dir, 'docs.jsonl'), idColumn: 'id', inputColumn: 'text' },
          model: { uri: path.join(fixture, 'model.onnx') },
          preprocess: { maxLength: 32 },
          taps: [{ layer: 'encoder.layer.3', reduce: 'mean', as: 'mean' }],
          batchSize: 64,
          shardSize: 1024,
          sink: { uri: path.join(dir, format), format },
        });
        const t0 = performance.now();
        const s = await runJob(job, { settings: redis.settings, threads: 2 });
        if (s.status !== 'committed' || s.rows !== E2E) throw new Error(`e2e run ${format}: ${s.status} ${s.rows} ${s.error ?? ''}`);
        const secs = (performance.now() - t0) / 1000;
        if (r > 0) times[format].push(secs);
        process.stderr.write(`${r === 0 ? 'e2e warm-up' : `e2e run ${r}`}: ${format} ${secs.toFixed(2)} s\n`);
      }
    }
  } finally {
    await redis.stop?.();
    await dropPrefix(redis.settings.redisUrl, redis.settings.prefix).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  return times;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { arrow: [], parquet: [], lanceCreate: [], lanceMerge: [], lanceUnchanged: [] };
for (let run = 0; run <= RUNS; run++) {
  const dir = await mkdtemp(path.join(DIR, 'layertap-bench-lance-'));
  try {
    const arrow = await writeParts(dir, 'arrow');
    const parquet = await writeParts(dir, 'parquet');
    const staged = stagedRun(dir);
    const db = path.join(dir, 'db');
    const create = (await lanceCommit(db, staged)).seconds;
    const merged = await lanceCommit(db, staged);
    const merge = merged.seconds;
    // a re-run in which no row changed: the table is read for its ids, nothing is rewritten
    const unchanged = (await lanceCommit(db, { ...staged, unchanged: { version: merged.version, ids: new Set(ids) } })).seconds;
    // run 0 is the warm-up
    if (run > 0) {
      results.arrow.push(arrow);
      results.parquet.push(parquet);
      results.lanceCreate.push(create);
      results.lanceMerge.push(merge);
      results.lanceUnchanged.push(unchanged);
    }
    process.stderr.write(
      `${run === 0 ? 'warm-up' : `run ${run}`}: arrow ${arrow.toFixed(2)} s, parquet ${parquet.toFixed(2)} s, lancedb create ${create.toFixed(2)} s, merge ${merge.toFixed(2)} s, unchanged ${unchanged.toFixed(2)} s\n`,
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
  row('lancedb commit, every row rewritten', results.lanceMerge),
  row('lancedb re-commit, no row changed', results.lanceUnchanged),
];
const e2e = E2E > 0 ? await endToEnd() : null;
if (JSON_OUT) {
  process.stdout.write(JSON.stringify({ rows: ROWS, dim: DIM, runs: RUNS, dir: DIR, results: table, e2e }) + '\n');
} else {
  console.log(`${ROWS} rows x ${DIM} float32 (${(bytes / 1e6).toFixed(0)} MB of vectors) in ${DIR}, median of ${RUNS} runs after a warm-up`);
  for (const r of table) {
    console.log(
      `${r.name.padEnd(40)} ${r.seconds.toFixed(2).padStart(7)} s ${Math.round(r.rowsPerSecond).toString().padStart(9)} rows/s ${r.mbPerSecond.toFixed(0).padStart(5)} MB/s  ${r.vsArrow.toFixed(2)}x arrow`,
    );
  }
  if (e2e) {
    const a = median(e2e.arrow);
    const l = median(e2e.lancedb);
    console.log(`whole runs, text fixture model, ${E2E} rows (median of ${RUNS}):`);
    console.log(`  format arrow    ${a.toFixed(2)} s  ${Math.round(E2E / a)} rows/s`);
    console.log(`  format lancedb  ${l.toFixed(2)} s  ${Math.round(E2E / l)} rows/s  ${(a / l).toFixed(2)}x arrow`);
  }
}
