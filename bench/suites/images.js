// A folder of JPEGs: layertap run vs the hand-written loop and vs the ideal overlap bound.
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { dist, jpegFolder, median, ONNX_MODEL } from '../lib/common.js';
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
  const { parseJob, modelSpecOf } = await dist('index.js');
  const { resolveJob } = await dist('pipeline/index.js');
  const threads = ctx.cores;
  const count = m.images;
  const dir = await jpegFolder(count);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(dir, f));
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
  const costs = { decodeMsPerImagePerCore: Number(dMs.toFixed(3)), forwardMsPerImagePerCore: Number(fMs.toFixed(3)), runsDecode: perImage.decode, runsForward: perImage.forward };
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

export async function imagesSuite(ctx) {
  const rows = [];
  for (const m of imageModels(ctx)) rows.push(...(await imagesFor(ctx, m)));
  return rows;
}
