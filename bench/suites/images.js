// A folder of JPEGs: layertap run vs the strong hand loop (both as processes, wall clock), vs the
// hand-written loop and vs the ideal overlap bound.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import YAML from 'yaml';
import { CLI, dist, jpegFolder, load1, median, ONNX_FEATURES_MODEL, ONNX_MODEL, ROOT } from '../lib/common.js';
import { InProcessPipeline } from '../lib/pipeline.js';
import { loadProbe, ratioRow, throughput } from '../lib/result.js';
import { ThreadGroup } from '../lib/threads.js';

const BATCH = 32;

export function imageModels(ctx) {
  const out = [];
  if (existsSync(ONNX_MODEL)) {
    out.push({
      key: 'onnx',
      label: 'MobileNetV2 ONNX',
      model: { uri: ONNX_MODEL, backend: 'onnx' },
      preprocess: { size: [224, 224], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      taps: [{ layer: 'classifier.1', at: 'input', as: 'embedding' }],
      forwardRows: ctx.quick ? 128 : 256,
      images: ctx.quick ? 192 : 600,
    });
  }
  out.push({
    key: 'wasm',
    label: 'MobileNetV2 TF.js',
    model: { uri: 'builtin:mobilenet_v2', backend: 'wasm' },
    preprocess: { size: [224, 224] },
    taps: [{ layer: 'flatten_1', as: 'embedding' }],
    forwardRows: ctx.quick ? 64 : 128,
    // its forward pass is ~7x slower: fewer images keep the hand loop's runs to about 15 s
    images: ctx.quick ? 96 : 200,
  });
  return out;
}

export function imageJob(name, dir, m, sink) {
  return { name, source: { uri: dir }, model: m.model, preprocess: m.preprocess, taps: m.taps, batchSize: BATCH, shardSize: 1024, sink: { uri: sink } };
}

/** Images the ONNX runs (and the PyTorch peer) read. */
export async function imageCount(ctx) {
  return ctx.quick ? 192 : 600;
}

async function imagesFor(ctx, m) {
  const { parseJob } = await dist('index.js');
  const { modelSpecOf } = await dist('workers/index.js');
  const { resolveJob } = await dist('pipeline/index.js');
  const threads = ctx.cores;
  const count = m.images;
  const dir = await jpegFolder(count);
  const files = (await readdir(dir))
    .filter((f) => f.endsWith('.jpg'))
    .sort()
    .map((f) => path.join(dir, f));
  const sink = path.join(ctx.tmp, `out-img-${m.key}`);
  const config = imageJob(`bench-img-${m.key}`, dir, m, sink);
  const resolved = await resolveJob(parseJob(config), { cwd: ctx.tmp });
  const spec = modelSpecOf(resolved);
  ctx.log(`  ${m.label}: ${count} JPEGs, batch ${BATCH}, ${threads} threads: loading`);
  const probe = loadProbe();
  const single = await ThreadGroup.start([{ mode: 'single', spec, files, batch: BATCH, forwardRows: m.forwardRows, cores: ctx.cores, onnx: m.key === 'onnx' }]);
  const pipe = await InProcessPipeline.start(ctx.settings(`img-${m.key}`), { threads });
  const t = { hand: [], handDefaults: [], pipe: [] };
  const perImage = { decode: [], forward: [], bound: [] };
  let backend = '';
  try {
    for (let run = 0; run <= ctx.runs; run++) {
      const d = await single.time('decode');
      const f = await single.time('forward');
      const h = await single.time('hand');
      const hd = await single.time('handDefaults');
      const p = await pipe.run(config, ctx.tmp);
      backend = p.summary.backend ?? backend;
      if (p.rows !== count) throw new Error(`pipeline embedded ${p.rows} rows, expected ${count}`);
      const line = {
        decode: (d.seconds / d.rows) * 1000,
        forward: (f.seconds / f.rows) * 1000,
      };
      const bound = ctx.cores / ((line.decode + line.forward) / 1000);
      ctx.log(
        `    run ${run}${run === 0 ? ' (warm-up)' : ''}: decode ${line.decode.toFixed(2)} ms + forward ${line.forward.toFixed(2)} ms per image per core -> bound ${bound.toFixed(1)} rows/s; ` +
          `hand loop ${(count / h.seconds).toFixed(1)}, hand loop (library threads) ${(count / hd.seconds).toFixed(1)}, layertap ${(count / p.seconds).toFixed(1)} rows/s`,
      );
      if (run > 0) {
        perImage.decode.push(line.decode);
        perImage.forward.push(line.forward);
        perImage.bound.push(bound);
        t.hand.push(h.seconds);
        t.handDefaults.push(hd.seconds);
        t.pipe.push(p.seconds);
      }
    }
  } finally {
    await pipe.close();
    await single.close();
    await rm(sink, { recursive: true, force: true });
  }
  const dMs = median(perImage.decode);
  const fMs = median(perImage.forward);
  const boundRps = ctx.cores / ((dMs + fMs) / 1000);
  const ours = throughput(count, t.pipe, { backend, threads, what: `layertap run (folder of JPEGs -> Arrow), warm worker` });
  const costs = {
    decodeMsPerImagePerCore: Number(dMs.toFixed(3)),
    forwardMsPerImagePerCore: Number(fMs.toFixed(3)),
    runsDecode: perImage.decode,
    runsForward: perImage.forward,
  };
  return [
    ratioRow({
      suite: 'images',
      name: `images vs hand loop, ${m.label}`,
      ours,
      ref: throughput(count, t.hand, { backend, threads: 1, what: 'one thread: read + decode a batch one image at a time, then run it (1 intra-op thread)' }),
      pairs: t.hand.map((h, i) => h / t.pipe[i]),
      goal: 1.5,
      probe,
    }),
    ratioRow({
      suite: 'images',
      name: `images vs ideal bound, ${m.label}`,
      ours,
      ref: {
        rowsPerSecond: boundRps,
        what: `cores / (decode + forward per image per core) = ${ctx.cores} / (${dMs.toFixed(2)} + ${fMs.toFixed(2)} ms)`,
        ...costs,
      },
      pairs: t.pipe.map((p, i) => count / p / perImage.bound[i]),
      goal: 0.85,
      probe,
    }),
    ratioRow({
      suite: 'images',
      name: `images vs hand loop with library threads, ${m.label} (info)`,
      ours,
      ref: throughput(count, t.handDefaults, {
        backend,
        threads: ctx.cores,
        what: `one thread: decodes of a batch in flight at once (sharp), then run it with ${m.key === 'onnx' ? `${ctx.cores} intra-op threads` : 'the backend as is'}`,
      }),
      pairs: t.handDefaults.map((h, i) => h / t.pipe[i]),
      goal: 1.0,
      probe,
      note: 'informative',
    }),
  ];
}

const STRONG_LOOP = path.join(ROOT, 'bench', 'lib', 'strong-loop.mjs');
const STRONG_NAME = 'images ONNX: run / strong hand loop (wall clock)';

/** Runs a command to its exit; wall seconds from spawn to exit, as `time` measures, plus its output. */
function wallClock(args, opts) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // opts.command: a prefix such as ['taskset', '-c', '0'] that runs Node
    const [cmd, ...pre] = opts.command ?? [process.execPath];
    const child = spawn(cmd, [...pre, ...(opts.command ? [process.execPath] : []), ...args], { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let exit = null;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => (exit = { seconds: (performance.now() - t0) / 1000, code, signal }));
    child.on('close', () => resolve({ ...exit, stdout, stderr }));
  });
}

/** The manifest of the one run under a sink folder (<sink>/<name>/<fingerprint>/<runId>/_manifest.json). */
async function onlyManifest(sink, name) {
  const base = path.join(sink, name);
  const found = [];
  // folders only: the sink also keeps files beside the runs (_LATEST)
  const folders = async (dir) => (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  for (const fp of await folders(base)) {
    for (const run of await folders(path.join(base, fp))) found.push(path.join(base, fp, run, '_manifest.json'));
  }
  if (found.length !== 1) throw new Error(`expected one run under ${base}, found ${found.length}`);
  const manifest = JSON.parse(await readFile(found[0], 'utf8'));
  // files are named relative to the run's folder
  return { ...manifest, files: manifest.files.map((f) => path.resolve(path.dirname(found[0]), f)) };
}

/** Largest absolute difference between the embeddings of two Arrow files, matched by id. */
async function largestDifference(fileA, fileB) {
  const [a, b] = await Promise.all([fileA, fileB].map(async (f) => tableFromIPC(await readFile(f))));
  if (a.numRows !== b.numRows) throw new Error(`${fileA} has ${a.numRows} rows, ${fileB} ${b.numRows}`);
  const rowOf = new Map();
  for (let i = 0; i < b.numRows; i++) rowOf.set(b.getChild('id').get(i), i);
  let largest = 0;
  for (let i = 0; i < a.numRows; i++) {
    const id = a.getChild('id').get(i);
    const j = rowOf.get(id);
    if (j === undefined) throw new Error(`${fileB} has no row '${id}'`);
    const x = a.getChild('embedding').get(i).toArray();
    const y = b.getChild('embedding').get(j).toArray();
    if (x.length !== y.length) throw new Error(`row '${id}': ${x.length} values against ${y.length}`);
    for (let k = 0; k < x.length; k++) largest = Math.max(largest, Math.abs(x[k] - y[k]));
  }
  return largest;
}

/**
 * `layertap run job.yaml` against the strong hand loop (bench/lib/strong-loop.mjs), each a child
 * process timed from spawn to exit, so both pay their own start-up: Node, imports, model load,
 * and for layertap the job check, Redis and the embedded worker's threads. Default threads on
 * both sides. The order alternates by round, so that neither side always runs on a machine the
 * other has just warmed or loaded.
 */
async function strongLoopFor(ctx, m) {
  const count = ctx.quick ? 192 : 1024;
  if (!existsSync(ONNX_FEATURES_MODEL)) {
    ctx.log(`  no ${ONNX_FEATURES_MODEL}: strong hand loop skipped (make it with /usr/bin/python3 bench/export-mobilenet-v2.py)`);
    return [{ suite: 'images', name: STRONG_NAME, ratio: null, goal: '>= 1.05', pass: false, skipped: true, note: `no ${ONNX_FEATURES_MODEL}` }];
  }
  const dir = await jpegFolder(count);
  const name = 'bench-img-strong';
  const sink = path.join(ctx.tmp, 'out-img-strong');
  const refOut = path.join(ctx.tmp, 'strong-loop.arrow');
  const jobFile = path.join(ctx.tmp, `${name}.yaml`);
  await writeFile(jobFile, YAML.stringify(imageJob(name, dir, m, sink)));
  const settings = ctx.settings('img-strong');
  const env = { ...process.env, REDIS_URL: settings.redisUrl, LAYERTAP_PREFIX: settings.prefix, LAYERTAP_ALLOW_EVICTION: '1' };
  const strong = async (extra) => {
    const r = await wallClock([STRONG_LOOP, ONNX_FEATURES_MODEL, dir, refOut, String(BATCH), ...extra], { cwd: ctx.tmp, env });
    if (r.code !== 0) throw new Error(`strong-loop.mjs exited ${r.code ?? r.signal}: ${r.stderr.slice(-2000)}`);
    const rows = JSON.parse(r.stdout.trim().split('\n').pop()).rows;
    if (rows !== count) throw new Error(`strong-loop.mjs embedded ${rows} rows, expected ${count}`);
    return { seconds: r.seconds };
  };
  const arms = {
    strong: () => strong([]),
    // onnxruntime's default intra-op threads are its count of physical cores, 1 for 2 vCPUs on
    // some hosts: the same loop with one per core is the reference wherever that differs
    strongCores: () => strong([String(ctx.cores)]),
    ours: async () => {
      await rm(sink, { recursive: true, force: true });
      const r = await wallClock([CLI, 'run', jobFile], { cwd: ctx.tmp, env });
      if (r.code !== 0) throw new Error(`layertap run exited ${r.code ?? r.signal}: ${(r.stderr + r.stdout).slice(-2000)}`);
      const manifest = await onlyManifest(sink, name);
      if (manifest.status !== 'committed' || manifest.rows !== count || manifest.errorRows !== 0) {
        throw new Error(`layertap run: ${manifest.status}, ${manifest.rows} rows (${manifest.errorRows} errors), expected ${count}`);
      }
      return { seconds: r.seconds, inRun: manifest.seconds, backend: manifest.model.runtime, part: manifest.files[0] };
    },
  };
  ctx.log(`  ${m.label}: ${count} JPEGs, batch ${BATCH}, strong hand loop vs layertap run, each a process, wall clock`);
  const probe = loadProbe();
  const t = { strong: [], strongCores: [], ours: [], inRun: [] };
  const order = ctx.cores > 1 ? ['strong', 'strongCores', 'ours'] : ['strong', 'ours'];
  let backend = '';
  let difference = null;
  try {
    for (let run = 0; run <= ctx.runs; run++) {
      const got = {};
      for (const arm of run % 2 === 0 ? order : [...order].reverse()) got[arm] = await arms[arm]();
      backend = got.ours.backend ?? backend;
      // the two sides must compute the same thing: same pixels, same tensor, same weights
      if (run === 0) {
        difference = await largestDifference(refOut, got.ours.part);
        if (!(difference <= 1e-3)) throw new Error(`the strong hand loop's embeddings differ from layertap's by up to ${difference}`);
      }
      ctx.log(
        `    run ${run}${run === 0 ? ` (warm-up; embeddings differ by at most ${difference})` : ''}: strong hand loop ${got.strong.seconds.toFixed(2)} s, ` +
          (got.strongCores
            ? `with ${ctx.cores} intra-op threads ${got.strongCores.seconds.toFixed(2)} s (-> ${(got.strongCores.seconds / got.ours.seconds).toFixed(3)}), `
            : '') +
          `layertap run ${got.ours.seconds.toFixed(2)} s (${got.ours.inRun.toFixed(2)} s of it from enqueue to commit) -> ${(got.strong.seconds / got.ours.seconds).toFixed(3)} ` +
          `(load average ${load1()})`,
      );
      if (run > 0) {
        t.strong.push(got.strong.seconds);
        if (got.strongCores) t.strongCores.push(got.strongCores.seconds);
        t.ours.push(got.ours.seconds);
        t.inRun.push(got.ours.inRun);
      }
    }
  } finally {
    await rm(sink, { recursive: true, force: true });
    await rm(refOut, { force: true });
  }
  const ours = throughput(count, t.ours, {
    backend,
    threads: ctx.cores,
    what: 'layertap run job.yaml as a child process, spawn to exit: start-up, embedded worker with default threads, Arrow files, commit',
    enqueueToCommitSeconds: t.inRun,
  });
  const rows = [];
  rows.push({
    suite: 'images',
    name: STRONG_NAME,
    ours,
    ref: throughput(count, t.strong, {
      backend: 'onnx',
      threads: ctx.cores,
      what: 'bench/lib/strong-loop.mjs as a child process, spawn to exit: per batch, sharp decodes all files at once (Promise.all), then onnxruntime-node with its default session options; one Arrow IPC file',
      largestDifference: difference,
    }),
    pairs: t.strong.map((s, i) => s / t.ours[i]),
    goal: 1.05,
  });
  if (t.strongCores.length > 0) {
    rows.push({
      suite: 'images',
      name: `${STRONG_NAME.replace(' (wall clock)', '')}, ${ctx.cores} intra-op threads (wall clock)`,
      ours,
      ref: throughput(count, t.strongCores, {
        backend: 'onnx',
        threads: ctx.cores,
        what: `the same strong hand loop with intraOpNumThreads ${ctx.cores}`,
      }),
      pairs: t.strongCores.map((s, i) => s / t.ours[i]),
      goal: 1.05,
    });
  }
  // one load probe for the rounds of both
  const load = probe.done();
  return rows.map((r) => ({ ...ratioRow({ ...r, probe: null }), load }));
}

/** Only the wall-clock figure (`npm run bench -- images-wall`): layertap run against the strong hand loop. */
export async function imagesWallSuite(ctx) {
  const m = imageModels(ctx).find((x) => x.key === 'onnx');
  if (!m) throw new Error(`no ${ONNX_MODEL}: make it with /usr/bin/python3 bench/export-mobilenet-v2.py`);
  return strongLoopFor(ctx, m);
}

/**
 * Thread settings of `layertap run` on the images job, each against the strong hand loop in the
 * same round (both whole processes, wall clock, as above): pool threads (`--threads`) and
 * onnxruntime intra-op threads (`model.intraOpThreads`), on every core and on one core
 * (`taskset -c 0`). Informative rows: they are what the defaults were chosen from.
 */
export async function imagesThreadsSuite(ctx) {
  const m = imageModels(ctx).find((x) => x.key === 'onnx');
  if (!m || !existsSync(ONNX_FEATURES_MODEL))
    throw new Error(`needs ${ONNX_MODEL} and ${ONNX_FEATURES_MODEL}: make them with /usr/bin/python3 bench/export-mobilenet-v2.py`);
  const count = ctx.quick ? 192 : 1024;
  const dir = await jpegFolder(count);
  const name = 'bench-img-threads';
  const sink = path.join(ctx.tmp, 'out-img-threads');
  const refOut = path.join(ctx.tmp, 'strong-loop-threads.arrow');
  const settings = ctx.settings('img-threads');
  const env = { ...process.env, REDIS_URL: settings.redisUrl, LAYERTAP_PREFIX: settings.prefix, LAYERTAP_ALLOW_EVICTION: '1' };
  const jobFile = async (intra) => {
    const file = path.join(ctx.tmp, `${name}-intra${intra ?? 'default'}.yaml`);
    const job = imageJob(name, dir, m, sink);
    if (intra !== undefined) job.model = { ...job.model, intraOpThreads: intra };
    await writeFile(file, YAML.stringify(job));
    return file;
  };
  const pinned = existsSync('/usr/bin/taskset') && ctx.cores > 1;
  const hosts = [
    { label: `${ctx.cores} cores`, cores: ctx.cores, pin: [] },
    ...(pinned ? [{ label: '1 core (taskset -c 0)', cores: 1, pin: ['taskset', '-c', '0'] }] : []),
  ];
  const rows = [];
  for (const host of hosts) {
    const variants = [{ label: `defaults (--threads ${host.cores}, intraOpThreads 1)`, args: [], intra: undefined }];
    for (const threads of [...new Set([1, 2, host.cores])]) {
      for (const intra of [...new Set([1, Math.max(1, Math.floor(host.cores / threads))])]) {
        // the defaults: a thread per core, the cores shared among them
        if (threads === host.cores && intra === Math.max(1, Math.floor(host.cores / threads))) continue;
        variants.push({ label: `--threads ${threads}, intraOpThreads ${intra}`, args: ['--threads', String(threads)], intra });
      }
    }
    for (const v of variants) v.job = await jobFile(v.intra);
    const spawnIn = (args) => (host.pin.length > 0 ? wallClock(args, { cwd: ctx.tmp, env, command: host.pin }) : wallClock(args, { cwd: ctx.tmp, env }));
    const strong = async () => {
      const r = await spawnIn([STRONG_LOOP, ONNX_FEATURES_MODEL, dir, refOut, String(BATCH)]);
      if (r.code !== 0) throw new Error(`strong-loop.mjs exited ${r.code ?? r.signal}: ${r.stderr.slice(-2000)}`);
      return r.seconds;
    };
    const ours = async (v) => {
      await rm(sink, { recursive: true, force: true });
      const r = await spawnIn([CLI, 'run', v.job, ...v.args]);
      if (r.code !== 0) throw new Error(`layertap run ${v.args.join(' ')} exited ${r.code ?? r.signal}: ${(r.stderr + r.stdout).slice(-2000)}`);
      return r.seconds;
    };
    ctx.log(`  ${host.label}: ${count} JPEGs, strong hand loop vs layertap run with ${variants.map((v) => v.label).join('; ')}`);
    const probe = loadProbe();
    const t = { strong: [], ours: variants.map(() => []) };
    for (let run = 0; run <= ctx.runs; run++) {
      const s = await strong();
      const got = [];
      for (const v of variants) got.push(await ours(v));
      ctx.log(
        `    run ${run}${run === 0 ? ' (warm-up)' : ''}: strong ${s.toFixed(2)} s; ${variants.map((v, i) => `${v.label} ${got[i].toFixed(2)} s (${(s / got[i]).toFixed(3)})`).join('; ')} (load average ${load1()})`,
      );
      if (run > 0) {
        t.strong.push(s);
        got.forEach((g, i) => t.ours[i].push(g));
      }
    }
    variants.forEach((v, i) =>
      rows.push(
        ratioRow({
          suite: 'images',
          name: `images ONNX, ${host.label}: run ${v.label} / strong hand loop (wall clock)`,
          ours: throughput(count, t.ours[i], { backend: 'onnx', threads: v.label }),
          ref: throughput(count, t.strong, { backend: 'onnx', threads: host.cores }),
          pairs: t.strong.map((x, k) => x / t.ours[i][k]),
          goal: 1.05,
          probe,
          note: 'informative',
        }),
      ),
    );
  }
  await rm(sink, { recursive: true, force: true });
  await rm(refOut, { force: true });
  return rows;
}

export async function imagesSuite(ctx) {
  const rows = [];
  for (const m of imageModels(ctx)) {
    if (m.key === 'onnx') rows.push(...(await strongLoopFor(ctx, m)));
    rows.push(...(await imagesFor(ctx, m)));
  }
  return rows;
}
