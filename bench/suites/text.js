// Text: a MiniLM-sized encoder (bench/export-text-encoder.py) on generated sentences of 5 to 200
// tokens. layertap against a bare loop in one process (tokenizer + onnxruntime, the same batch
// size and the same length-sorted windows), length grouping against none, and tapping every
// layer against the last one; rows/s and tokens/s.
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { dist, RESULTS } from '../lib/common.js';
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

function job(name, file, taps, sink) {
  return { name, source: { uri: file }, model: { uri: MODEL }, taps, batchSize: BATCH, shardSize: 512, sink: { uri: sink } };
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
  const runs = { bare: [], grouped: [], plain: [], all: [] };
  let tokens = 0;
  let backend = '';
  try {
    for (let run = 0; run <= ctx.runs; run++) {
      const b = await bare.run(lines, window);
      tokens = b.tokens;
      const g = await grouped.run(job('bench-text-last', file, last, sink), ctx.tmp);
      const p = await plain.run(job('bench-text-plain', file, last, sink), ctx.tmp);
      const a = await grouped.run(job('bench-text-all', file, all, sink), ctx.tmp);
      backend = g.summary.backend ?? backend;
      for (const r of [g, p, a]) if (r.rows !== rows) throw new Error(`a text run embedded ${r.rows} rows, expected ${rows}`);
      ctx.log(
        `    run ${run}${run === 0 ? ' (warm-up)' : ''}: bare ${(rows / b.seconds).toFixed(1)}, layertap ${(rows / g.seconds).toFixed(1)}, ` +
          `ungrouped ${(rows / p.seconds).toFixed(1)}, 6 layers ${(rows / a.seconds).toFixed(1)} rows/s (${(tokens / g.seconds).toFixed(0)} tokens/s)`,
      );
      if (run > 0) {
        runs.bare.push(b.seconds);
        runs.grouped.push(g.seconds);
        runs.plain.push(p.seconds);
        runs.all.push(a.seconds);
      }
    }
  } finally {
    await plain.close();
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
