#!/usr/bin/env node
// Throughput of the same images through MobileNetV2 on TF.js (wasm) and on ONNX (onnxruntime-node).
//
//   npm run build
//   node bench/onnx-vs-tfjs.js <mobilenet_v2.onnx> [--rows 128] [--batch 32] [--runs 3] [--threads N]
//
// The ONNX model is torchvision's MobileNetV2 exported with random weights (speed does not depend
// on the weight values); bench/export-mobilenet-v2.py makes it, see usage() below. The TF.js side is
// builtin:mobilenet_v2, the same architecture at 224x224. Both tap the pooled 1280-d features.
//
// Two measurements, each with a warm-up and --runs timed runs (the median is reported):
//   forward  - ModelRunner.run on already-decoded batches, one thread, onnxruntime with 1 intra-op thread
//   pipeline - the pool layertap runs (decode + resize + forward in --threads threads), images as files
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = path.join(ROOT, 'dist');

function usage(message) {
  if (message) process.stderr.write(`${message}\n\n`);
  process.stderr.write(`usage: node bench/onnx-vs-tfjs.js <mobilenet_v2.onnx> [--rows N] [--batch N] [--runs N] [--threads N]

To make the ONNX model (Debian 12; no download of weights, random ones are used):
  apt-get install -y python3-torch python3-torchvision
  /usr/bin/python3 bench/export-mobilenet-v2.py bench/results/mobilenet_v2.onnx
Then:
  npm run build && node bench/onnx-vs-tfjs.js bench/results/mobilenet_v2.onnx
`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { model: undefined, rows: 128, batch: 32, runs: 3, threads: availableParallelism() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') usage();
    if (a.startsWith('--')) {
      const key = a.slice(2);
      const value = Number(argv[++i]);
      if (!(key in opts) || key === 'model' || !Number.isInteger(value) || value < 1) usage(`bad option ${a} ${argv[i] ?? ''}`);
      opts[key] = value;
    } else if (opts.model === undefined) {
      opts.model = path.resolve(a);
    } else {
      usage(`unexpected argument ${a}`);
    }
  }
  if (opts.model === undefined) usage('name the ONNX model to benchmark');
  if (!existsSync(opts.model)) usage(`no such file: ${opts.model}`);
  return opts;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The demo pictures (npm install writes them), cycled to `rows` files. */
async function images(rows) {
  const dir = path.join(ROOT, 'data', 'demo');
  const { writeDemoImages } = await import(path.join(DIST, 'cli', 'demo-data.js'));
  await writeDemoImages(dir);
  const files = readdirSync(dir, { recursive: true })
    .map((f) => path.join(dir, String(f)))
    .filter((f) => /\.(jpe?g|png)$/i.test(f))
    .sort();
  const bytes = files.map((f) => new Uint8Array(readFileSync(f)));
  return Array.from({ length: rows }, (_, i) => bytes[i % bytes.length]);
}

function tapFor(layer, at) {
  return { layer, at, as: 'features', reduce: 'none', normalize: 'none', dtype: 'float32' };
}

const SIDES = [
  {
    name: 'TF.js wasm',
    spec: {
      uri: 'builtin:mobilenet_v2',
      backend: 'wasm',
      taps: [tapFor('flatten_1', 'output')],
      inputShape: [224, 224, 3],
      preprocess: { size: [224, 224], fit: 'cover', layout: 'nhwc', channels: 3, mean: [0, 0, 0], std: [1, 1, 1] },
    },
  },
  {
    name: 'ONNX',
    spec: (model) => ({
      uri: model,
      backend: 'onnx',
      // torchvision's classifier is Dropout then Linear: the Linear's input is the pooled features
      taps: [tapFor('classifier.1', 'input')],
      inputShape: [3, 224, 224],
      preprocess: {
        size: [224, 224],
        fit: 'cover',
        layout: 'nchw',
        channels: 3,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      },
    }),
  },
];

async function forwardBench(spec, files, opts) {
  const { loadRunner, singleFloatInput } = await import(path.join(DIST, 'models', 'index.js'));
  const { decodeImage } = await import(path.join(DIST, 'preprocess', 'image-decode.js'));
  const per = spec.inputShape.reduce((a, b) => a * b, 1);
  const batches = [];
  for (let start = 0; start < files.length; start += opts.batch) {
    const chunk = files.slice(start, start + opts.batch);
    const input = new Float32Array(chunk.length * per);
    for (const [i, f] of chunk.entries()) input.set(await decodeImage(f, spec.preprocess), i * per);
    batches.push({ input, rows: chunk.length });
  }
  const runner = await loadRunner({ ...spec, fingerprint: `bench-${spec.backend}`, intraOpThreads: 1 });
  try {
    const times = [];
    for (let run = 0; run <= opts.runs; run++) {
      const t0 = performance.now();
      for (const b of batches) await runner.run(singleFloatInput(runner, b.input, spec.inputShape));
      // run 0 is the warm-up
      if (run > 0) times.push((performance.now() - t0) / 1000);
    }
    return { backend: runner.backend, rowsPerSecond: files.length / median(times) };
  } finally {
    await runner.dispose();
  }
}

async function pipelineBench(spec, files, opts) {
  const { EmbedPool } = await import(path.join(DIST, 'workers', 'pool.js'));
  const pool = new EmbedPool({ threads: opts.threads, backend: spec.backend });
  const model = { ...spec, fingerprint: `bench-pipeline-${spec.backend}` };
  try {
    const times = [];
    let backend = '';
    for (let run = 0; run <= opts.runs; run++) {
      const t0 = performance.now();
      const pending = [];
      for (let start = 0; start < files.length; start += opts.batch) {
        // the pool takes the file buffers by transfer: each run sends fresh copies
        const chunk = files.slice(start, start + opts.batch).map((f) => f.slice());
        const ids = chunk.map((_, i) => String(start + i));
        pending.push(pool.run({ model, input: { kind: 'images', ids, files: chunk } }));
      }
      const results = await Promise.all(pending);
      backend = results[0]?.backend ?? '';
      const errors = results.reduce((n, r) => n + r.errors.length, 0);
      if (errors > 0) throw new Error(`${errors} rows failed: ${results.flatMap((r) => r.errors)[0]?.message}`);
      if (run > 0) times.push((performance.now() - t0) / 1000);
    }
    return { backend, rowsPerSecond: files.length / median(times) };
  } finally {
    await pool.close();
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(path.join(DIST, 'models', 'index.js'))) usage("dist/ is missing: run 'npm run build' first");
  const files = await images(opts.rows);
  const sides = SIDES.map((s) => ({ name: s.name, spec: typeof s.spec === 'function' ? s.spec(opts.model) : s.spec }));
  process.stderr.write(
    `MobileNetV2 224x224, ${opts.rows} images (the demo set, cycled), batch ${opts.batch}, ` +
      `median of ${opts.runs} runs after a warm-up, ${availableParallelism()} cores\n` +
      'the ONNX model has random weights: inference speed does not depend on the weight values\n',
  );
  const rows = [];
  for (const [mode, bench, threads] of [
    ['forward', forwardBench, 1],
    ['pipeline', pipelineBench, opts.threads],
  ]) {
    const result = {};
    for (const side of sides) {
      process.stderr.write(`  ${mode}: ${side.name} ...\n`);
      result[side.name] = await bench(side.spec, files, opts);
    }
    const [tf, onnx] = [result['TF.js wasm'], result.ONNX];
    rows.push({
      mode,
      threads,
      tfjs: tf.rowsPerSecond,
      onnx: onnx.rowsPerSecond,
      ratio: onnx.rowsPerSecond / tf.rowsPerSecond,
      backends: `${tf.backend}/${onnx.backend}`,
    });
  }
  const fmt = (n) => n.toFixed(1).padStart(10);
  process.stdout.write(`${'mode'.padEnd(10)}${'threads'.padStart(8)}${'TF.js rows/s'.padStart(14)}${'ONNX rows/s'.padStart(13)}${'ONNX/TF.js'.padStart(12)}\n`);
  for (const r of rows) {
    process.stdout.write(
      `${r.mode.padEnd(10)}${String(r.threads).padStart(8)}${fmt(r.tfjs).padStart(14)}${fmt(r.onnx).padStart(13)}${`${r.ratio.toFixed(1)}x`.padStart(12)}\n`,
    );
  }
  process.stdout.write(
    'forward: decoded batches through ModelRunner.run in this thread (onnxruntime: 1 intra-op thread);\n' +
      'pipeline: image files through the layertap pool (decode + resize + forward), threads x intra-op threads = cores.\n' +
      'The ONNX model has random weights; speed does not depend on weight values.\n',
  );
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
