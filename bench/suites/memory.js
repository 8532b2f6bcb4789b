// Memory: peak RSS of a `layertap worker` process as the dataset grows, and zero-copy transfer.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { dist, procStatus, SEED_MODEL, writeNpy } from '../lib/common.js';
import { loadProbe } from '../lib/result.js';
import { ProcessPipeline } from '../lib/pipeline.js';

/** Resets the process's peak RSS (VmHWM) to its current RSS (Linux: /proc/PID/clear_refs). */
async function resetPeak(pid) {
  try {
    await writeFile(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

async function seedJob(ctx, rows) {
  // 28x28x1 rows: the small seed model, so that 100k rows take seconds, not hours
  const npy = await writeNpy(path.join(ctx.tmp, `seed-${rows}.npy`), rows, [28, 28, 1], (i, row) => {
    for (let k = 0; k < row.length; k++) row[k] = Math.sin(i * 0.731 + k * 0.37) * 0.5 + 0.5;
  });
  return {
    name: `bench-mem-${rows}`,
    source: { uri: npy.file },
    model: { uri: SEED_MODEL, backend: 'wasm' },
    taps: [
      { layer: 'linear_class.0', at: 'input', as: 'hidden' },
      { layer: 'conv_32.2', as: 'pooled' },
    ],
    batchSize: 64,
    shardSize: 4096,
    sink: { uri: path.join(ctx.tmp, 'out-mem') },
  };
}

/**
 * Peak RSS (VmHWM, threads included) of one `layertap worker` process (2 threads) while it embeds
 * `rows` rows. `warm`: the process has already run a job (model loaded, heaps grown) and its
 * peak is reset before this run, so that the figure is what the run itself needs.
 */
async function peakFor(ctx, pipe, rows, warm) {
  const job = await seedJob(ctx, rows);
  const pid = pipe.procs[0].p.pid;
  if (warm && !(await resetPeak(pid))) return null;
  const samples = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const s = await procStatus(pid);
      if (s) samples.push(s.rss);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const r = await pipe.run(job, ctx.tmp);
    sampling = false;
    await sampler;
    const end = await procStatus(pid);
    const q = (f) => samples[Math.min(samples.length - 1, Math.floor(f * samples.length))] ?? 0;
    ctx.log(
      `    ${warm ? 'warm' : 'cold'} worker, ${rows} rows: ${(rows / r.seconds).toFixed(0)} rows/s, peak RSS ${(end.hwm / 1024).toFixed(0)} MB; RSS at 25/50/75/100%: ${[0.25, 0.5, 0.75, 1].map((f) => (q(f) / 1024).toFixed(0)).join(' / ')} MB`,
    );
    return {
      rows,
      seconds: r.seconds,
      rowsPerSecond: rows / r.seconds,
      peakMB: end.hwm / 1024,
      rssQuartilesMB: [0.25, 0.5, 0.75, 1].map((f) => q(f) / 1024),
      backend: r.summary.backend,
    };
  } finally {
    sampling = false;
  }
}

/** Cold: a fresh worker per size. Warm: one worker that has already run 100k rows, peak reset before each size. */
async function peaks(ctx, warm) {
  const out = [];
  let pipe = null;
  try {
    for (const rows of [10_000, 100_000]) {
      if (!pipe || !warm) {
        await pipe?.close();
        pipe = await ProcessPipeline.start(ctx.settings(`mem-${warm ? 'warm' : 'cold'}-${rows}`), { processes: 1, threads: ctx.cores });
        // a long-lived worker: allocator arenas and heaps at their working size before measuring
        if (warm) await pipe.run(await seedJob(ctx, 100_000), ctx.tmp);
      }
      const p = await peakFor(ctx, pipe, rows, warm);
      if (!p) return null;
      out.push(p);
    }
  } finally {
    await pipe?.close();
  }
  return out;
}

/** The sender's buffers are detached once the pool has them, for every input kind; features come back whole. */
async function zeroCopy(ctx) {
  const { EmbedPool, modelSpecOf } = await dist('workers/index.js');
  const { parseJob } = await dist('index.js');
  const { resolveJob } = await dist('pipeline/index.js');
  const npy = await writeNpy(path.join(ctx.tmp, 'zc.npy'), 4, [28, 28, 1]);
  const job = await resolveJob(
    parseJob({
      name: 'zc',
      source: { uri: npy.file },
      model: { uri: SEED_MODEL, backend: 'cpu' },
      taps: [{ layer: 'linear_1.0' }, { layer: 'conv_16.2' }],
      sink: { uri: ctx.tmp },
    }),
  );
  const model = modelSpecOf(job);
  const pool = new EmbedPool({ threads: 1, backend: 'cpu' });
  const checks = [];
  try {
    const batch = new Float32Array(4 * 784).map((_, i) => (i % 97) / 97);
    const res1 = await pool.run({ model, input: { kind: 'tensor', ids: ['0', '1', '2', '3'], data: batch } });
    checks.push({ what: 'tensor batch detached', ok: batch.buffer.byteLength === 0 });
    const rows = Array.from({ length: 4 }, (_, r) => new Float32Array(784).map((_, i) => ((i + r) % 89) / 89));
    const res2 = await pool.run({ model, input: { kind: 'rows', ids: ['0', '1', '2', '3'], rows } });
    checks.push({ what: 'tensor rows detached', ok: rows.every((r) => r.buffer.byteLength === 0) });
    // the same values either way, so laying rows out in the thread loses nothing
    const a = res1.taps.linear_1_0?.data;
    const b = res2.taps.linear_1_0?.data;
    checks.push({
      what: 'features come back as whole buffers',
      ok: [res1, res2].every((r) => Object.values(r.taps).every((t) => t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength)),
    });
    checks.push({
      what: 'rows and batch give finite features',
      ok: Boolean(a && b && a.length === b.length && a.every(Number.isFinite) && b.every(Number.isFinite)),
    });
  } finally {
    await pool.close();
  }
  return checks;
}

export async function memorySuite(ctx) {
  const rows = [];
  for (const warm of [true, false]) {
    const probe = loadProbe();
    const p = await peaks(ctx, warm);
    if (!p) {
      ctx.log('    cannot reset the peak RSS (/proc/PID/clear_refs): warm figure skipped');
      continue;
    }
    const [small, large] = p;
    const ratio = large.peakMB / small.peakMB;
    const label = warm ? 'warm worker' : 'fresh worker per size';
    rows.push({
      suite: 'memory',
      name: `memory, peak RSS 100k vs 10k rows, ${label}`,
      ratio,
      goal: '<= 1.1',
      pass: ratio <= 1.1,
      // the cold figure includes each process's start (model load, heaps growing to their working size)
      note: warm ? '' : 'informative',
      ours: { rowsPerSecond: large.rowsPerSecond, backend: large.backend, threads: ctx.cores, what: `100k rows: peak ${large.peakMB.toFixed(0)} MB`, ...large },
      ref: { rowsPerSecond: small.rowsPerSecond, backend: small.backend, threads: ctx.cores, what: `10k rows: peak ${small.peakMB.toFixed(0)} MB`, ...small },
      load: probe.done(),
    });
  }
  const probe = loadProbe();
  const checks = await zeroCopy(ctx);
  for (const c of checks) ctx.log(`    zero-copy: ${c.what}: ${c.ok ? 'yes' : 'NO'}`);
  rows.push({
    suite: 'memory',
    name: 'zero-copy: inputs detached after transfer',
    ratio: null,
    goal: 'all',
    pass: checks.every((c) => c.ok),
    checks,
    load: probe.done(),
  });
  return rows;
}
