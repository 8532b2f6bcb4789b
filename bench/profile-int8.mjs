// Where int8 time goes, and how far from the CPU's limit it is (Linux, onnxruntime-node):
//   node bench/profile-int8.mjs [model.onnx] [--tokens T] [--batch B] [--runs N] [--threads N]
// 1. onnxruntime's own profile (enableProfiling) of one forward pass of [B, T] tokens at fp32 and at
//    int8 (the graph `model.precision: int8` runs), milliseconds per op type;
// 2. one weight product alone, [B*T, 384] x [384, 1536] (the encoder's intermediate dense), at fp32
//    (MatMul) and int8 (DynamicQuantizeMatMul): GFLOP/s (int8: GOP/s) per thread count;
// 3. the model's FLOPs per row and what the runs above reach of them.
// Default model: bench/results/text-encoder/model.onnx (bench/export-text-encoder.py).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs/minimal.js';
import { dist, RESULTS } from './lib/common.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args.splice(i, 2)[1]) : def;
};
const TOKENS = opt('--tokens', 128);
const BATCH = opt('--batch', 32);
const RUNS = opt('--runs', 4);
const THREADS = opt('--threads', 1);
const MODEL = args[0] ?? path.join(RESULTS, 'text-encoder', 'model.onnx');

const ort = (await import('onnxruntime-node')).default;
const { readOnnxFiles } = await dist('models/onnx/files.js');
const { quantizeOnnx } = await dist('models/onnx/quantize.js');

const sessionOptions = (threads, extra = {}) => ({
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  logSeverityLevel: 3,
  ...extra,
});

/** Milliseconds per op type of one run (the median of RUNS profiled runs after a warm-up), and the runs' wall time. */
async function profile(bytes, feeds, label) {
  const dir = await mkdtemp(path.join(tmpdir(), 'layertap-prof-'));
  const s = await ort.InferenceSession.create(bytes, sessionOptions(THREADS, { enableProfiling: true, profileFilePrefix: path.join(dir, label) }));
  for (let i = 0; i <= RUNS; i++) await s.run(feeds);
  s.endProfiling();
  const file = readdirSync(dir).find((f) => f.endsWith('.json'));
  const events = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  rmSync(dir, { recursive: true, force: true });
  await s.release();
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => e.dur / 1000);
  const byOp = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur / 1000);
  }
  // the first run is the warm-up: leave it out of the per-op sums in proportion
  const counted = runs.slice(1);
  const scale = counted.reduce((a, b) => a + b, 0) / runs.reduce((a, b) => a + b, 0) / counted.length;
  return {
    runMs: counted.sort((a, b) => a - b)[Math.floor(counted.length / 2)],
    ops: [...byOp].map(([op, ms]) => [op, ms * scale]).sort((a, b) => b[1] - a[1]),
  };
}

/** One MatMul [M, K] x [K, N] with a weight, as a model. */
function matmulModel(m, k, n) {
  const w = protobuf.Writer;
  const msg = (f) => {
    const x = w.create();
    f(x);
    return x.finish();
  };
  const valueInfo = (name, dims) =>
    msg((x) => {
      x.uint32((1 << 3) | 2).string(name);
      const shape = msg((sx) => {
        for (const d of dims) sx.uint32((1 << 3) | 2).bytes(msg((dx) => dx.uint32((1 << 3) | 0).int64(d)));
      });
      const tensorType = msg((tx) =>
        tx
          .uint32((1 << 3) | 0)
          .int32(1)
          .uint32((2 << 3) | 2)
          .bytes(shape),
      );
      x.uint32((2 << 3) | 2).bytes(msg((tx) => tx.uint32((1 << 3) | 2).bytes(tensorType)));
    });
  const values = new Float32Array(k * n).map((_, i) => Math.sin(i * 0.37) * 0.05);
  const weight = msg((x) => {
    x.uint32((1 << 3) | 0).int64(k);
    x.uint32((1 << 3) | 0).int64(n);
    x.uint32((2 << 3) | 0).int32(1);
    x.uint32((8 << 3) | 2).string('w');
    x.uint32((9 << 3) | 2).bytes(new Uint8Array(values.buffer));
  });
  const node = msg((x) =>
    x
      .uint32((1 << 3) | 2)
      .string('a')
      .uint32((1 << 3) | 2)
      .string('w')
      .uint32((2 << 3) | 2)
      .string('y')
      .uint32((3 << 3) | 2)
      .string('mm')
      .uint32((4 << 3) | 2)
      .string('MatMul'),
  );
  const graph = msg((x) => {
    x.uint32((1 << 3) | 2).bytes(node);
    x.uint32((2 << 3) | 2).string('g');
    x.uint32((5 << 3) | 2).bytes(weight);
    x.uint32((11 << 3) | 2).bytes(valueInfo('a', [m, k]));
    x.uint32((12 << 3) | 2).bytes(valueInfo('y', [m, n]));
  });
  return msg((x) => {
    x.uint32((1 << 3) | 0).int64(8);
    x.uint32((7 << 3) | 2).bytes(graph);
    x.uint32((8 << 3) | 2).bytes(
      msg((o) =>
        o
          .uint32((1 << 3) | 2)
          .string('')
          .uint32((2 << 3) | 0)
          .int64(14),
      ),
    );
  });
}

async function gemmRate(bytes, m, k, n, threads) {
  const s = await ort.InferenceSession.create(bytes, sessionOptions(threads));
  const a = new ort.Tensor(
    'float32',
    new Float32Array(m * k).map((_, i) => Math.cos(i * 0.11)),
    [m, k],
  );
  await s.run({ a });
  const times = [];
  for (let i = 0; i < RUNS + 2; i++) {
    const t0 = performance.now();
    await s.run({ a });
    times.push(performance.now() - t0);
  }
  await s.release();
  const ms = times.sort((x, y) => x - y)[Math.floor(times.length / 2)];
  return { ms, gflops: (2 * m * k * n) / (ms / 1000) / 1e9 };
}

const files = await readOnnxFiles(MODEL);
const q = quantizeOnnx(files);
const ids = new BigInt64Array(BATCH * TOKENS).map((_, i) => BigInt(5 + ((i * 7919) % 20000)));
const feeds = {
  input_ids: new ort.Tensor('int64', ids, [BATCH, TOKENS]),
  attention_mask: new ort.Tensor('int64', new BigInt64Array(BATCH * TOKENS).fill(1n), [BATCH, TOKENS]),
  token_type_ids: new ort.Tensor('int64', new BigInt64Array(BATCH * TOKENS), [BATCH, TOKENS]),
};
console.log(`${MODEL}: [${BATCH}, ${TOKENS}] tokens, ${THREADS} intra-op thread(s), median of ${RUNS} runs after a warm-up; ${q.nodes.length} nodes quantized`);
const fp32 = await profile(files.bytes, feeds, 'fp32');
const int8 = await profile(q.files.bytes, feeds, 'int8');
console.log(`forward pass: fp32 ${fp32.runMs.toFixed(1)} ms, int8 ${int8.runMs.toFixed(1)} ms (${(fp32.runMs / int8.runMs).toFixed(2)}x)`);
const ops = [...new Set([...fp32.ops, ...int8.ops].map(([op]) => op))];
const get = (p, op) => p.ops.find(([o]) => o === op)?.[1] ?? 0;
console.log('op type                        fp32 ms    int8 ms');
for (const op of ops.sort((a, b) => get(fp32, b) + get(int8, b) - get(fp32, a) - get(int8, a))) {
  if (get(fp32, op) + get(int8, op) < 0.05) continue;
  console.log(`${op.padEnd(28)} ${get(fp32, op).toFixed(1).padStart(9)} ${get(int8, op).toFixed(1).padStart(10)}`);
}

// FLOPs per row at TOKENS tokens: the weight products (2 K N per token each) and attention (QK^T and
// its product with V: 2 x 2 T H per token per layer); layers and hidden size read off the graph
let dense = 0;
for (const n of files.model.graph.nodes) {
  const w = files.model.graph.initializers.find((i) => i.name === n.inputs[1] && i.dims.length === 2);
  if ((n.opType === 'MatMul' || n.opType === 'Gemm') && w) dense += 2 * w.dims[0] * w.dims[1] * (n.name.includes('pooler') ? 1 / TOKENS : 1);
}
const attentionProducts = files.model.graph.nodes.filter(
  (n) => n.opType === 'MatMul' && !files.model.graph.initializers.some((i) => i.name === n.inputs[1]),
).length;
const hidden = files.model.graph.initializers.find((i) => /word_embeddings/.test(i.name))?.dims[1] ?? 384;
const attention = (attentionProducts / 2) * 2 * 2 * TOKENS * hidden;
const perRow = (dense + attention) * TOKENS;
console.log(
  `FLOPs per row of ${TOKENS} tokens: ${(perRow / 1e9).toFixed(2)} GFLOP (weight products ${((dense * TOKENS) / 1e9).toFixed(2)}, attention ${((attention * TOKENS) / 1e9).toFixed(2)})`,
);
console.log(
  `forward pass rate: fp32 ${((perRow * BATCH) / (fp32.runMs / 1000) / 1e9).toFixed(0)} GFLOP/s, int8 ${((perRow * BATCH) / (int8.runMs / 1000) / 1e9).toFixed(0)} GOP/s (all FLOPs counted at the precision of the pass)`,
);
const dq = get(int8, 'DynamicQuantizeMatMul');
console.log(
  `weight products alone: fp32 MatMul ${((dense * TOKENS * BATCH) / (get(fp32, 'MatMul') / 1000) / 1e9).toFixed(0)} GFLOP/s (attention MatMuls included in its time), int8 ${((dense * TOKENS * BATCH) / (dq / 1000) / 1e9).toFixed(0)} GOP/s`,
);

const [m, k, n] = [BATCH * TOKENS, hidden, 4 * hidden];
const mm = matmulModel(m, k, n);
const mm8 = quantizeOnnx({ source: 'matmul.onnx', bytes: mm, model: (await dist('models/onnx/graph.js')).parseOnnxModel(mm, 'matmul.onnx'), external: [] })
  .files.bytes;
for (const threads of [...new Set([1, THREADS, 2])]) {
  const a = await gemmRate(mm, m, k, n, threads);
  const b = await gemmRate(mm8, m, k, n, threads);
  console.log(
    `one weight product [${m}, ${k}] x [${k}, ${n}], ${threads} thread(s): fp32 ${a.ms.toFixed(1)} ms = ${a.gflops.toFixed(0)} GFLOP/s, int8 ${b.ms.toFixed(1)} ms = ${b.gflops.toFixed(0)} GOP/s (${(a.ms / b.ms).toFixed(2)}x)`,
  );
}
