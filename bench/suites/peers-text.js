// Text against transformers.js, whole processes: what a Node.js user runs today
// (bench/peers/transformers-js.mjs: pipeline('feature-extraction'), fp32, batches of 32 in source
// order, mean pooling) against `layertap run` of the text bench's job (encoder.layer.5 mean,
// batch 32, shard 512) at fp32 and at int8, each timed from spawn to exit on the same sentences.
// The int8 run includes what every int8 run does: the price measured on its first
// `model.precisionSample` rows at fp32 and int8, and loading (or, in the warm-up round, making)
// the cached int8 model. The three alternate, in a rotating order, round by round; ratios are
// paired per round. transformers.js is not a project dependency: without
// `ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix bench/results/peers @huggingface/transformers`
// the suite is skipped.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CLI, dist, RESULTS, ROOT, timedNode } from '../lib/common.js';
import { loadProbe, ratioRow, throughput } from '../lib/result.js';
import { peerEntry } from '../peers/transformers-js.mjs';

const DIR = path.join(RESULTS, 'text-encoder');
const MODEL = path.join(DIR, 'model.onnx');
const PEER = path.join(ROOT, 'bench', 'peers', 'transformers-js.mjs');
const LAST = 'encoder.layer.5';
/** layertap fp32 against transformers.js fp32: the same network and pooling, so the vectors must agree to this. */
const MIN_COSINE = 0.9999;

function jobYaml(name, file, sink, int8) {
  return [
    `name: ${name}`,
    'source:',
    `  uri: ${JSON.stringify(file)}`,
    'model:',
    `  uri: ${JSON.stringify(MODEL)}`,
    ...(int8 ? ['  precision: int8'] : []),
    'taps:',
    `  - layer: ${LAST}`,
    '    reduce: mean',
    '    as: last_mean',
    'batchSize: 32',
    'shardSize: 512',
    'sink:',
    `  uri: ${JSON.stringify(sink)}`,
    '',
  ].join('\n');
}

/** layertap's column `last_mean` by row id (the .txt line index). */
async function layertapVectors(files) {
  const { readPartFile } = await dist('sinks/read-arrow.js');
  const out = new Map();
  for (const f of files) {
    const t = await readPartFile(f);
    const ids = [...t.getChild('id')].map(Number);
    const col = [...t.getChild('last_mean')];
    ids.forEach((id, i) => out.set(id, Float32Array.from(col[i])));
  }
  return out;
}

/** Per-row cosine of the peer's .f32 rows against layertap's vectors: { mean, min, rows }. */
function cosines(peer, dim, ours) {
  const cos = [];
  for (const [id, v] of ours) {
    const u = peer.subarray(id * dim, (id + 1) * dim);
    let dot = 0;
    let nu = 0;
    let nv = 0;
    for (let k = 0; k < dim; k++) {
      dot += u[k] * v[k];
      nu += u[k] * u[k];
      nv += v[k] * v[k];
    }
    cos.push(dot / Math.sqrt(nu * nv));
  }
  return { rows: cos.length, mean: cos.reduce((s, x) => s + x, 0) / cos.length, min: Math.min(...cos) };
}

export async function peersTextSuite(ctx) {
  const skip = (why) => [{ suite: 'peers-text', name: `text vs transformers.js: skipped (${why})`, ratio: null, goal: '-', pass: false, skipped: true }];
  if (!existsSync(MODEL)) {
    ctx.log(`  no ${MODEL}: make it with /usr/bin/python3 bench/export-text-encoder.py`);
    return skip('no model');
  }
  if (!peerEntry()) {
    ctx.log('  transformers.js is not installed (it is not a project dependency); to compare with it:');
    ctx.log('    ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix bench/results/peers @huggingface/transformers');
    return skip('not installed');
  }
  const rows = ctx.quick ? 768 : 4000;
  const threads = ctx.cores;
  const dir = path.join(ctx.tmp, 'peers-text');
  await mkdir(dir, { recursive: true });
  const lines = (await readFile(path.join(DIR, 'sentences.txt'), 'utf8')).split('\n').slice(0, rows);
  const file = path.join(dir, `sentences-${rows}.txt`);
  await writeFile(file, lines.join('\n') + '\n');
  const sink = path.join(dir, 'out');
  await writeFile(path.join(dir, 'fp32.yaml'), jobYaml('bench-peers-fp32', file, sink, false));
  await writeFile(path.join(dir, 'int8.yaml'), jobYaml('bench-peers-int8', file, sink, true));
  let n = 0;
  const env = () => ({ ...process.env, REDIS_URL: ctx.redisUrl, LAYERTAP_PREFIX: `${ctx.prefix}-peers-text-${n++}`, LAYERTAP_ALLOW_EVICTION: '1' });
  let peerInfo = null;
  const variants = {
    peer: async () => {
      const r = await timedNode([PEER, '--rows', String(rows), '--threads', String(threads), '--out', path.join(dir, 'peer'), '--sentences', file], {
        cwd: dir,
        env: process.env,
      });
      peerInfo = JSON.parse(r.stdout);
      if (peerInfo.rows !== rows) throw new Error(`transformers.js embedded ${peerInfo.rows} rows, expected ${rows}`);
      return r.seconds;
    },
    fp32: (keep) => layertap('fp32.yaml', keep),
    int8: (keep) => layertap('int8.yaml', keep),
  };
  const kept = {};
  let precision = null;
  async function layertap(jobFile, keep) {
    const r = await timedNode([CLI, 'run', jobFile, '--threads', String(threads), '--json'], { cwd: dir, env: env() });
    const summary = JSON.parse(r.stdout);
    if (summary.status !== 'committed' || summary.rows !== rows)
      throw new Error(`layertap run ${jobFile} ended ${summary.status} with ${summary.rows} rows, expected ${rows}`);
    if (summary.precision) precision = summary.precision;
    if (keep) kept[jobFile] = await layertapVectors(summary.output.files);
    await rm(sink, { recursive: true, force: true });
    return r.seconds;
  }
  const order = ['peer', 'fp32', 'int8'];
  const runs = { peer: [], fp32: [], int8: [] };
  ctx.log(`  ${rows} sentences, batch 32, ${threads} threads, whole processes: transformers.js fp32, layertap run fp32, layertap run int8`);
  const probe = loadProbe();
  try {
    for (let round = 0; round <= ctx.runs; round++) {
      const last = round === ctx.runs;
      const seconds = {};
      // a rotating order: none of the three always runs first (or right after another's page cache)
      for (let k = 0; k < order.length; k++) {
        const v = order[(round + k) % order.length];
        seconds[v] = await variants[v](last);
      }
      ctx.log(
        `    round ${round}${round === 0 ? ' (warm-up)' : ''}: transformers.js ${seconds.peer.toFixed(1)} s, layertap fp32 ${seconds.fp32.toFixed(1)} s, ` +
          `int8 ${seconds.int8.toFixed(1)} s (${(rows / seconds.peer).toFixed(1)}, ${(rows / seconds.fp32).toFixed(1)}, ${(rows / seconds.int8).toFixed(1)} rows/s)`,
      );
      if (round > 0) for (const v of order) runs[v].push(seconds[v]);
    }
  } finally {
    await rm(sink, { recursive: true, force: true });
  }
  const load = probe.done();
  // the last round's vectors: the peer's .f32 (row i = line i) against layertap's fp32 and int8 columns
  const peerVectors = new Float32Array((await readFile(peerInfo.vectors)).buffer.slice(0));
  const fp32Cos = cosines(peerVectors, peerInfo.dim, kept['fp32.yaml']);
  const int8Cos = cosines(peerVectors, peerInfo.dim, kept['int8.yaml']);
  await rm(dir, { recursive: true, force: true });
  ctx.log(
    `  transformers.js ${peerInfo.versions['@huggingface/transformers']} (onnxruntime-node ${peerInfo.versions['onnxruntime-node']}, ` +
      `session options ${JSON.stringify(peerInfo.sessionOptions)}); its own split of the last run: load ${peerInfo.seconds.load.toFixed(1)} s, embed ${peerInfo.seconds.embed.toFixed(1)} s`,
  );
  ctx.log(
    `  cosine to transformers.js over ${fp32Cos.rows} rows: layertap fp32 mean ${fp32Cos.mean.toFixed(6)} (lowest ${fp32Cos.min.toFixed(6)}), ` +
      `int8 mean ${int8Cos.mean.toFixed(5)} (lowest ${int8Cos.min.toFixed(5)})`,
  );
  const ref = throughput(rows, runs.peer, {
    backend: 'onnx',
    threads,
    what: `transformers.js ${peerInfo.versions['@huggingface/transformers']} pipeline('feature-extraction') fp32, mean pooling, batches of 32 in source order, whole process`,
    versions: peerInfo.versions,
    sessionOptions: peerInfo.sessionOptions,
  });
  const ours = (v, what) => throughput(rows, runs[v], { backend: 'onnx', threads, what });
  const pairs = (v) => runs.peer.map((p, i) => p / runs[v][i]);
  const int8 = ratioRow({
    suite: 'peers-text',
    name: 'text: layertap int8 whole process / transformers.js fp32',
    ours: { ...ours('int8', `layertap run, model.precision: int8 (with its first-rows price), ${LAST} mean, whole process`), precision },
    ref,
    pairs: pairs('int8'),
    goal: 3,
    note: `int8 vectors vs transformers.js fp32: mean cosine ${int8Cos.mean.toFixed(5)}`,
  });
  const fp32 = {
    ...ratioRow({
      suite: 'peers-text',
      name: 'text: layertap fp32 whole process / transformers.js fp32',
      ours: ours('fp32', `layertap run, fp32, ${LAST} mean, whole process`),
      ref,
      pairs: pairs('fp32'),
      goal: 0,
    }),
    goal: '-',
    note: 'informative',
  };
  const quality = {
    suite: 'peers-text',
    name: `text: layertap fp32 vs transformers.js fp32, mean cosine over ${fp32Cos.rows} rows`,
    ratio: fp32Cos.mean,
    unit: '',
    ratioRuns: null,
    goal: `>= ${MIN_COSINE}`,
    pass: fp32Cos.mean >= MIN_COSINE,
    ours: { minCosine: fp32Cos.min, int8: int8Cos },
    ref: null,
    note: `lowest row ${fp32Cos.min.toFixed(6)}`,
    load,
  };
  return [{ ...int8, load }, { ...fp32, load }, quality];
}
