// Tensor inputs (.npy): pipeline efficiency against a bare forward loop, tap overhead, scaling.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { dist, ONNX_MODEL, writeNpy } from '../lib/common.js';
import { InProcessPipeline, ProcessPipeline } from '../lib/pipeline.js';
import { loadProbe, ratioRow, throughput } from '../lib/result.js';
import { slices, ThreadGroup } from '../lib/threads.js';

const BATCH = 32;

/** MobileNetV2 models the tensor suites run: ONNX when exported, and TF.js builtin on wasm. */
export function mobilenets(ctx) {
  const out = [];
  if (existsSync(ONNX_MODEL)) {
    out.push({
      key: 'onnx',
      label: 'MobileNetV2 ONNX',
      model: { uri: ONNX_MODEL, backend: 'onnx' },
      shape: [3, 224, 224],
      // torchvision's classifier is Dropout then Linear: the Linear's input is the pooled 1280-d features
      taps: [{ layer: 'classifier.1', at: 'input', as: 'embedding' }],
      rows: ctx.quick ? 384 : 1536,
    });
  } else {
    ctx.log(`  no ${ONNX_MODEL}: ONNX rows skipped (make it with /usr/bin/python3 bench/export-mobilenet-v2.py)`);
  }
  out.push({
    key: 'wasm',
    label: 'MobileNetV2 TF.js',
    model: { uri: 'builtin:mobilenet_v2', backend: 'wasm' },
    shape: [224, 224, 3],
    taps: [{ layer: 'flatten_1', as: 'embedding' }],
    rows: ctx.quick ? 128 : 384,
  });
  return out;
}

async function npyFor(ctx, m, rows) {
  const file = path.join(ctx.tmp, `${m.key}-${rows}.npy`);
  ctx.files ??= new Map();
  if (!ctx.files.has(file)) ctx.files.set(file, await writeNpy(file, rows, m.shape));
  return ctx.files.get(file);
}

function job(name, npy, m, extra = {}) {
  return {
    name,
    source: { uri: npy.file },
    model: { ...m.model, ...(extra.model ?? {}) },
    taps: extra.taps ?? m.taps,
    batchSize: BATCH,
    shardSize: extra.shardSize ?? 512,
    sink: { uri: extra.sink },
  };
}

/** Pipeline rows/s vs a bare loop of loadRunner in worker threads on the same arrays. */
async function efficiency(ctx, m) {
  const { parseJob } = await dist('index.js');
  const { modelSpecOf } = await dist('workers/index.js');
  const { resolveJob } = await dist('pipeline/index.js');
  const threads = ctx.cores;
  const npy = await npyFor(ctx, m, m.rows);
  const sink = path.join(ctx.tmp, `out-eff-${m.key}`);
  const config = job(`bench-eff-${m.key}`, npy, m, { sink });
  const spec = {
    ...modelSpecOf(await resolveJob(parseJob(config), { cwd: ctx.tmp })),
    // what a pool thread gets by default: the cores shared among the threads
    ...(m.key === 'onnx' ? { intraOpThreads: Math.max(1, Math.floor(ctx.cores / threads)) } : {}),
  };
  ctx.log(`  ${m.label}: ${m.rows} rows, batch ${BATCH}, ${threads} threads: loading`);
  const probe = loadProbe();
  const bare = await ThreadGroup.start(slices(m.rows, BATCH, threads).map((s) => ({ mode: 'bare', spec, npy, batch: BATCH, ...s })));
  const pipe = await InProcessPipeline.start(ctx.settings('eff'), { threads });
  try {
    const bareRuns = [];
    const pipeRuns = [];
    let backend = '';
    // run 0 of each is the warm-up (it also loads the model in the pool threads)
    for (let run = 0; run <= ctx.runs; run++) {
      const b = await bare.time('forward');
      const p = await pipe.run(config, ctx.tmp);
      backend = p.summary.backend ?? backend;
      if (p.rows !== m.rows) throw new Error(`pipeline embedded ${p.rows} rows, expected ${m.rows}`);
      ctx.log(
        `    run ${run}${run === 0 ? ' (warm-up)' : ''}: bare ${(m.rows / b.seconds).toFixed(1)} rows/s, layertap ${(m.rows / p.seconds).toFixed(1)} rows/s`,
      );
      if (run > 0) {
        bareRuns.push(b.seconds);
        pipeRuns.push(p.seconds);
      }
    }
    return ratioRow({
      suite: 'tensors',
      name: `efficiency, tensors, ${m.label}`,
      ours: throughput(m.rows, pipeRuns, { backend, threads, what: 'layertap run (.npy -> Arrow), warm worker' }),
      ref: throughput(m.rows, bareRuns, { backend: bare.backend, threads, what: 'bare loadRunner loop in worker threads' }),
      pairs: bareRuns.map((b, i) => b / pipeRuns[i]),
      goal: 0.9,
      probe,
    });
  } finally {
    await pipe.close();
    await bare.close();
    await rm(sink, { recursive: true, force: true });
  }
}

/** Two taps (pooled features + an unreduced mid-network block) vs the model's final output only. */
async function tapOverhead(ctx, m) {
  const npy = await npyFor(ctx, m, m.rows);
  const sink = path.join(ctx.tmp, `out-taps-${m.key}`);
  const variants =
    m.key === 'onnx'
      ? {
          final: [{ layer: 'classifier.1', at: 'output', as: 'logits' }],
          two: [
            { layer: 'classifier.1', at: 'input', as: 'embedding' },
            { layer: 'features.13', at: 'output', as: 'block13' },
          ],
        }
      : {
          final: [{ layer: 'dense_3', as: 'logits' }],
          two: [
            { layer: 'flatten_1', as: 'embedding' },
            { layer: 'block_13_project_BN', as: 'block13' },
          ],
        };
  const probe = loadProbe();
  const pipe = await InProcessPipeline.start(ctx.settings('taps'), { threads: ctx.cores });
  try {
    const runs = { final: [], two: [] };
    let backend = '';
    for (let run = 0; run <= ctx.runs; run++) {
      for (const v of ['final', 'two']) {
        const r = await pipe.run(job(`bench-taps-${v}`, npy, m, { taps: variants[v], sink }), ctx.tmp);
        backend = r.summary.backend ?? backend;
        if (run > 0) runs[v].push(r.seconds);
        ctx.log(`    run ${run}${run === 0 ? ' (warm-up)' : ''}: ${v} ${(m.rows / r.seconds).toFixed(1)} rows/s`);
      }
    }
    return ratioRow({
      suite: 'taps',
      name: `tap overhead, ${m.label}`,
      ours: throughput(m.rows, runs.two, { backend, threads: ctx.cores, what: `taps ${variants.two.map((t) => t.layer).join(' + ')}` }),
      ref: throughput(m.rows, runs.final, { backend, threads: ctx.cores, what: `final output only (${variants.final[0].layer})` }),
      pairs: runs.final.map((f, i) => f / runs.two[i]),
      goal: 0.95,
      probe,
    });
  } finally {
    await pipe.close();
    await rm(sink, { recursive: true, force: true });
  }
}

/** The bare forward loop on 1 and 2 threads: how far the model itself scales on this machine. */
async function bareScaling(ctx, m, npy, config) {
  const { parseJob } = await dist('index.js');
  const { modelSpecOf } = await dist('workers/index.js');
  const { resolveJob } = await dist('pipeline/index.js');
  // the job already pins ONNX to one intra-op thread per model thread
  const spec = modelSpecOf(await resolveJob(parseJob(config), { cwd: ctx.tmp }));
  const probe = loadProbe();
  const one = await ThreadGroup.start(slices(m.rows, BATCH, 1).map((s) => ({ mode: 'bare', spec, npy, batch: BATCH, ...s })));
  const two = await ThreadGroup.start(slices(m.rows, BATCH, 2).map((s) => ({ mode: 'bare', spec, npy, batch: BATCH, ...s })));
  try {
    const runs = { one: [], two: [] };
    for (let run = 0; run <= ctx.runs; run++) {
      const a = await one.time('forward');
      const b = await two.time('forward');
      if (run > 0) {
        runs.one.push(a.seconds);
        runs.two.push(b.seconds);
      }
      ctx.log(`    bare run ${run}${run === 0 ? ' (warm-up)' : ''}: one ${(m.rows / a.seconds).toFixed(1)}, two ${(m.rows / b.seconds).toFixed(1)} rows/s`);
    }
    return ratioRow({
      suite: 'scaling',
      name: `scaling, bare loop 2 vs 1 threads, ${m.label} (info)`,
      ours: throughput(m.rows, runs.two, { backend: one.backend, threads: 2, what: 'bare loop, 2 threads' }),
      ref: throughput(m.rows, runs.one, { backend: one.backend, threads: 1, what: 'bare loop, 1 thread' }),
      pairs: runs.one.map((o, i) => o / runs.two[i]),
      goal: 1.8,
      note: 'informative',
      probe,
    });
  } finally {
    await one.close();
    await two.close();
  }
}

/** 2 threads vs 1, and 2 worker processes vs 1, each thread with one intra-op thread (one core). */
async function scaling(ctx, m) {
  const npy = await npyFor(ctx, m, m.rows);
  const sink = path.join(ctx.tmp, `out-scale-${m.key}`);
  // one core per model thread, so that N threads use N cores (otherwise 1 thread x N intra-op threads)
  // 4 shards: two processes (each taking 2 at a time) get equal shares
  const config = job(`bench-scale-${m.key}`, npy, m, { sink, shardSize: m.rows / 4, model: m.key === 'onnx' ? { intraOpThreads: 1 } : {} });
  const rows = [];
  rows.push(await bareScaling(ctx, m, npy, config));
  for (const kind of ['threads', 'processes']) {
    const probe = loadProbe();
    const make = (n) =>
      kind === 'threads'
        ? InProcessPipeline.start(ctx.settings(`scale-t${n}`), { threads: n })
        : ProcessPipeline.start(ctx.settings(`scale-p${n}`), { processes: n, threads: 1 });
    const one = await make(1);
    const two = await make(2);
    try {
      const runs = { one: [], two: [] };
      let backend = '';
      for (let run = 0; run <= ctx.runs; run++) {
        for (const [k, p] of [
          ['one', one],
          ['two', two],
        ]) {
          const r = await p.run(config, ctx.tmp);
          backend = r.summary.backend ?? backend;
          if (run > 0) runs[k].push(r.seconds);
          ctx.log(`    ${kind} run ${run}${run === 0 ? ' (warm-up)' : ''}: ${k} ${(m.rows / r.seconds).toFixed(1)} rows/s`);
        }
      }
      const unit = kind === 'threads' ? 'thread' : 'worker process (1 thread)';
      rows.push(
        ratioRow({
          suite: 'scaling',
          name: `scaling, 2 vs 1 ${kind}, ${m.label}`,
          ours: throughput(m.rows, runs.two, { backend, threads: 2, what: `2 x ${unit}` }),
          ref: throughput(m.rows, runs.one, { backend, threads: 1, what: `1 x ${unit}` }),
          pairs: runs.one.map((o, i) => o / runs.two[i]),
          goal: 1.8,
          probe,
        }),
      );
    } finally {
      await one.close();
      await two.close();
    }
  }
  await rm(sink, { recursive: true, force: true });
  return rows;
}

export async function tensorsSuite(ctx) {
  const rows = [];
  for (const m of mobilenets(ctx)) rows.push(await efficiency(ctx, m));
  return rows;
}

export async function tapsSuite(ctx) {
  const rows = [];
  for (const m of mobilenets(ctx)) {
    if (ctx.quick && m.key !== 'onnx' && rows.length > 0) continue;
    rows.push(await tapOverhead(ctx, m));
  }
  return rows;
}

export async function scalingSuite(ctx) {
  const m = mobilenets(ctx)[0];
  return scaling(ctx, m);
}
