// Text: a MiniLM-sized encoder (bench/export-text-encoder.py) on generated sentences of 5 to 200
// tokens. layertap against a bare loop in one process (tokenizer + onnxruntime, the same batch
// size and the same length-sorted windows), length grouping against none, and tapping every
// layer against the last one; rows/s and tokens/s.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { dist, RESULTS, ROOT } from '../lib/common.js';
import { InProcessPipeline } from '../lib/pipeline.js';
import { loadProbe, ratioRow, throughput } from '../lib/result.js';

const DIR = path.join(RESULTS, 'text-encoder');
const MODEL = path.join(DIR, 'model.onnx');
const BATCH = 32;
const LAST = 'encoder.layer.5';

/** The first `rows` sentences as a .txt source, and their token count after truncation. */
async function sentences(ctx, rows) {
  const lines = (await readFile(path.join(DIR, 'sentences.txt'), 'utf8')).split('\n').slice(0, rows);
  const file = path.join(ctx.tmp, `sentences-${rows}.txt`);
  await writeFile(file, lines.join('\n') + '\n');
  return { file, lines };
}

/**
 * What a user who does not use layertap writes: read the sentences, sort each window of rows by
 * length as layertap does, tokenize, pad, one session.run per batch, mean over the real tokens.
 */
class BareLoop {
  static async start(threads, maxLength) {
    const ort = await import('onnxruntime-node');
    const tokenizer = new Tokenizer(
      JSON.parse(await readFile(path.join(DIR, 'tokenizer.json'), 'utf8')),
      JSON.parse(await readFile(path.join(DIR, 'tokenizer_config.json'), 'utf8')),
    );
    const session = await ort.InferenceSession.create(MODEL, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new BareLoop(ort, tokenizer, session, maxLength);
  }

  constructor(ort, tokenizer, session, maxLength) {
    Object.assign(this, { ort, tokenizer, session, maxLength });
  }

  /** Token ids of a row: [CLS] content [SEP], cut to maxLength. */
  ids(text) {
    const content = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    return [2, ...content.slice(0, this.maxLength - 2), 3];
  }

  async run(lines, window) {
    const t0 = performance.now();
    let tokens = 0;
    for (let start = 0; start < lines.length; start += window) {
      const rows = lines.slice(start, start + window).sort((a, b) => a.length - b.length);
      for (let b = 0; b < rows.length; b += BATCH) {
        const ids = rows.slice(b, b + BATCH).map((t) => this.ids(t));
        const n = ids.length;
        const t = Math.max(...ids.map((r) => r.length));
        const inputIds = new BigInt64Array(n * t);
        const mask = new BigInt64Array(n * t);
        ids.forEach((r, i) => r.forEach((id, k) => ((inputIds[i * t + k] = BigInt(id)), (mask[i * t + k] = 1n))));
        const dims = [n, t];
        const out = await this.session.run(
          {
            input_ids: new this.ort.Tensor('int64', inputIds, dims),
            attention_mask: new this.ort.Tensor('int64', mask, dims),
            token_type_ids: new this.ort.Tensor('int64', new BigInt64Array(n * t), dims),
          },
          ['last_hidden_state'],
        );
        const h = out.last_hidden_state.data;
        const d = out.last_hidden_state.dims[2];
        const pooled = new Float32Array(n * d);
        ids.forEach((r, i) => {
          for (let k = 0; k < r.length; k++) for (let j = 0; j < d; j++) pooled[i * d + j] += h[(i * t + k) * d + j] / r.length;
          tokens += r.length;
        });
      }
    }
    return { seconds: (performance.now() - t0) / 1000, tokens };
  }

  async close() {
    await this.session.release();
  }
}

function job(name, file, taps, sink, model = {}) {
  return { name, source: { uri: file }, model: { uri: MODEL, ...model }, taps, batchSize: BATCH, shardSize: 512, sink: { uri: sink } };
}

/** Per-row cosine of one column between two runs' part files, matched by id. */
async function cosines(a, b, column) {
  const { readPartFile } = await dist('sinks/read-arrow.js');
  const rows = async (files) => {
    const out = new Map();
    for (const f of files) {
      const t = await readPartFile(f);
      const ids = [...t.getChild('id')].map(String);
      const col = [...t.getChild(column)];
      ids.forEach((id, i) => out.set(id, Float32Array.from(col[i])));
    }
    return out;
  };
  const [x, y] = [await rows(a), await rows(b)];
  return [...x].map(([id, u]) => {
    const v = y.get(id);
    let dot = 0;
    let nu = 0;
    let nv = 0;
    for (let k = 0; k < u.length; k++) {
      dot += u[k] * v[k];
      nu += u[k] * u[k];
      nv += v[k] * v[k];
    }
    return { row: Number(id), cos: dot / Math.sqrt(nu * nv) };
  });
}

/** The price of int8 on the text fixture's ten sentences, as a run measures it (pooled last layer and the pooler). */
async function fixturePrice(ctx) {
  const { parseJob } = await dist('index.js');
  const { resolveJob } = await dist('pipeline/index.js');
  const { priceInt8 } = await dist('pipeline/precision.js');
  // a copy of the fixture's model: the int8 cache goes beside it, not into the fixtures
  const fixture = path.join(ctx.tmp, 'text-model');
  await mkdir(fixture, { recursive: true });
  for (const f of ['model.onnx', 'tokenizer.json', 'tokenizer_config.json', 'sentences.jsonl']) {
    await copyFile(path.join(ROOT, 'test', 'fixtures', 'text-model', f), path.join(fixture, f));
  }
  const resolved = await resolveJob(
    parseJob({
      name: 'bench-int8-fixture',
      source: { uri: path.join(fixture, 'sentences.jsonl') },
      model: { uri: path.join(fixture, 'model.onnx'), precision: 'int8' },
      taps: [{ layer: 'encoder.layer.3', reduce: 'mean' }, { layer: 'pooler' }],
      sink: { uri: path.join(ctx.tmp, 'unused') },
    }),
    { cwd: ctx.tmp },
  );
  return priceInt8(resolved, { onFigure: (line) => ctx.log(`  text fixture: ${line}`) });
}

export async function textSuite(ctx) {
  if (!existsSync(MODEL)) {
    ctx.log(`  no ${MODEL}: make it with /usr/bin/python3 bench/export-text-encoder.py`);
    return [{ suite: 'text', name: 'text: skipped (no model)', ratio: null, goal: '-', pass: false, skipped: true }];
  }
  const rows = ctx.quick ? 256 : 768;
  const threads = ctx.cores;
  const { file, lines } = await sentences(ctx, rows);
  const sink = path.join(ctx.tmp, 'out-text');
  const { parseJob } = await dist('index.js');
  const { resolveJob } = await dist('pipeline/index.js');
  const maxLength = (await resolveJob(parseJob(job('bench-text', file, [{ layer: LAST, reduce: 'mean' }], sink)), { cwd: ctx.tmp })).text.maxLength;
  // layertap's window with `threads` pool threads: as many batches as it keeps in flight, 2 per thread
  const window = BATCH * Math.max(2, 2 * threads);
  const last = [{ layer: LAST, reduce: 'mean', as: 'last_mean' }];
  const all = [{ layer: 'encoder.layer.*', reduce: 'mean' }];
  ctx.log(`  MiniLM-sized encoder: ${rows} sentences, batch ${BATCH}, ${threads} threads, maxLength ${maxLength}: loading`);
  const probe = loadProbe();
  const bare = await BareLoop.start(threads, maxLength);
  const grouped = await InProcessPipeline.start(ctx.settings('text'), { threads });
  const plain = await InProcessPipeline.start(ctx.settings('text-plain'), { threads, groupByLength: false });
  // int8 on a worker of its own: a pool thread keeps two models, and the fp32 jobs above are two
  // (the last layer, all layers), so sharing would reload a model in every timed run
  const quant = await InProcessPipeline.start(ctx.settings('text-int8'), { threads });
  const runs = { bare: [], grouped: [], plain: [], all: [], int8: [] };
  let quality = null;
  const int8 = { precision: 'int8' };
  let tokens = 0;
  let backend = '';
  try {
    for (let run = 0; run <= ctx.runs; run++) {
      const b = await bare.run(lines, window);
      tokens = b.tokens;
      const g = await grouped.run(job('bench-text-last', file, last, sink), ctx.tmp);
      // int8 right after fp32, so that the pair sees the same load; the first round quantizes the model (cached after)
      const q = await quant.run(job('bench-text-int8', file, last, sink, int8), ctx.tmp);
      const p = await plain.run(job('bench-text-plain', file, last, sink), ctx.tmp);
      const a = await grouped.run(job('bench-text-all', file, all, sink), ctx.tmp);
      backend = g.summary.backend ?? backend;
      for (const r of [g, q, p, a]) if (r.rows !== rows) throw new Error(`a text run embedded ${r.rows} rows, expected ${rows}`);
      ctx.log(
        `    run ${run}${run === 0 ? ' (warm-up)' : ''}: bare ${(rows / b.seconds).toFixed(1)}, layertap ${(rows / g.seconds).toFixed(1)}, ` +
          `int8 ${(rows / q.seconds).toFixed(1)}, ungrouped ${(rows / p.seconds).toFixed(1)}, 6 layers ${(rows / a.seconds).toFixed(1)} rows/s (${(tokens / g.seconds).toFixed(0)} tokens/s)`,
      );
      if (run > 0) {
        runs.bare.push(b.seconds);
        runs.grouped.push(g.seconds);
        runs.int8.push(q.seconds);
        runs.plain.push(p.seconds);
        runs.all.push(a.seconds);
      }
    }
    // quality, untimed: every row of an fp32 run against the int8 run of the same rows (the rows
    // past the first `precisionSample` are a held-out check of the figure the run measures)
    const f = await grouped.run(job('bench-text-q-fp32', file, last, sink), ctx.tmp, { keep: true });
    const i = await quant.run(job('bench-text-q-int8', file, last, sink, int8), ctx.tmp, { keep: true });
    const c = await cosines(f.summary.output.files, i.summary.output.files, 'last_mean');
    const { resolveJob } = await dist('pipeline/index.js');
    const { priceInt8 } = await dist('pipeline/precision.js');
    const t0 = performance.now();
    const report = await priceInt8(await resolveJob(parseJob(job('bench-text-price', file, last, sink, int8)), { cwd: ctx.tmp }), {
      onFigure: (line) => ctx.log(`  ${line}`),
    });
    const sampleSeconds = (performance.now() - t0) / 1000;
    const mean = (xs) => xs.reduce((s, x) => s + x.cos, 0) / xs.length;
    const held = c.filter((x) => x.row >= report.sample);
    quality = {
      rows: c.length,
      meanCosine: mean(c),
      minCosine: Math.min(...c.map((x) => x.cos)),
      heldOut: held.length > 0 ? { rows: held.length, meanCosine: mean(held), minCosine: Math.min(...held.map((x) => x.cos)) } : null,
      sample: report,
      sampleSeconds,
    };
    ctx.log(
      `  int8 vs fp32, all ${c.length} rows: mean cosine ${quality.meanCosine.toFixed(5)}, lowest ${quality.minCosine.toFixed(5)}` +
        (quality.heldOut ? `; rows past the sample: mean ${quality.heldOut.meanCosine.toFixed(5)}` : '') +
        `; the sample itself took ${sampleSeconds.toFixed(1)} s (a pool of its own, models loaded)`,
    );
    quality.fixture = await fixturePrice(ctx);
  } finally {
    await plain.close();
    await quant.close();
    await grouped.close();
    await bare.close();
    await rm(sink, { recursive: true, force: true });
  }
  const load = probe.done();
  const perTokens = (r) => ({ ...r, tokensPerSecond: tokens / r.seconds, tokens });
  const ours = perTokens(throughput(rows, runs.grouped, { backend, threads, what: `layertap run (.txt -> Arrow), ${LAST} mean, length-grouped` }));
  const row = (fields) => ({ ...ratioRow(fields), load });
  return [
    row({
      suite: 'text',
      name: 'text efficiency vs bare loop (tokenizer + onnxruntime)',
      ours,
      ref: perTokens(
        throughput(rows, runs.bare, { backend: 'onnx', threads, what: `one process, ${threads} intra-op threads, same batches and length sorting` }),
      ),
      pairs: runs.bare.map((b, i) => b / runs.grouped[i]),
      goal: 0.9,
    }),
    row({
      suite: 'text',
      name: 'text int8 vs fp32 (layertap, same job; sample not included)',
      ours: perTokens(throughput(rows, runs.int8, { backend, threads, what: `model.precision: int8, ${LAST} mean, length-grouped` })),
      ref: ours,
      pairs: runs.grouped.map((g, i) => g / runs.int8[i]),
      goal: 2.0,
      note: `the first-rows price (${quality.sample.sample} rows at int8 and fp32) took ${quality.sampleSeconds.toFixed(1)} s on a pool of its own`,
    }),
    {
      suite: 'text',
      name: `text int8: mean cosine to fp32 over all ${quality.rows} rows (${LAST} mean)`,
      ratio: quality.meanCosine,
      unit: '',
      ratioRuns: null,
      goal: '>= 0.99',
      pass: quality.meanCosine >= 0.99,
      ours: { minCosine: quality.minCosine, heldOut: quality.heldOut, sample: quality.sample, fixture: quality.fixture },
      ref: null,
      note: `lowest row ${quality.minCosine.toFixed(4)}; held-out rows ${quality.heldOut?.meanCosine.toFixed(5) ?? '-'}; fixture ${Object.values(
        quality.fixture.taps,
      )
        .map((t) => t.meanCosine.toFixed(5))
        .join(', ')}`,
      load,
    },
    row({
      suite: 'text',
      name: 'text length grouping vs none',
      ours,
      ref: perTokens(throughput(rows, runs.plain, { backend, threads, what: 'layertap, rows batched in source order' })),
      pairs: runs.plain.map((p, i) => p / runs.grouped[i]),
      goal: 1.5,
    }),
    row({
      suite: 'text',
      name: 'text: 6 layers mean vs the last one (time ratio)',
      ours: perTokens(throughput(rows, runs.all, { backend, threads, what: 'encoder.layer.* mean' })),
      ref: ours,
      pairs: runs.all.map((a, i) => a / runs.grouped[i]),
      goal: 1.1,
      higherIsBetter: false,
    }),
  ];
}
