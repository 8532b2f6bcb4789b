// Start-up: `layertap run` of a tiny job from process start to exit, which is almost all module
// loading, model threads starting and Redis round trips. It is a fixed cost of every run (about
// a sixth of a 1000-image run when it took 1.5 s), so it has a goal of its own.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CLI, median, ROOT, spread, timedNode } from '../lib/common.js';
import { loadProbe } from '../lib/result.js';

/** Seconds from start to exit of a run of the 3-row seed job must stay at or under this. */
const GOAL_SECONDS = 0.7;
const SEED = path.join(ROOT, 'test', 'fixtures', 'seed-model');

/** A folder with the seed ONNX model, its 3-row NCHW .npy and a job tapping linear_class.0 at input into ./out. */
async function seedJob(ctx) {
  const dir = path.join(ctx.tmp, 'startup');
  await mkdir(dir, { recursive: true });
  await copyFile(path.join(SEED, 'seed_model.onnx'), path.join(dir, 'seed_model.onnx'));
  await copyFile(path.join(SEED, 'input_nchw.npy'), path.join(dir, 'input_nchw.npy'));
  const job = [
    'name: startup',
    'source:',
    '  uri: ./input_nchw.npy',
    'model:',
    '  uri: ./seed_model.onnx',
    'taps:',
    '  - layer: linear_class.0',
    '    at: input',
    'sink:',
    '  uri: ./out',
    '',
  ];
  await writeFile(path.join(dir, 'job.yaml'), job.join('\n'));
  return dir;
}

/** Seconds from spawning `layertap run job.yaml --json` to its exit (which must be 0). */
async function timedRun(dir, env, args) {
  const { seconds, stdout } = await timedNode([CLI, 'run', 'job.yaml', '--json', ...args], { cwd: dir, env });
  const summary = JSON.parse(stdout);
  if (summary.status !== 'committed' || summary.rows !== 3) throw new Error(`layertap run ended ${summary.status} with ${summary.rows} rows`);
  return seconds;
}

/**
 * Median start-to-exit time of the seed run, after a warm-up run (file cache, Redis scripts),
 * with the default threads (one per core) and, interleaved run by run, with one thread: on a
 * small machine the threads start while the main thread is still loading, and this shows
 * what that overlap costs or gains.
 */
export async function startupSuite(ctx) {
  const dir = await seedJob(ctx);
  const env = { ...process.env, REDIS_URL: ctx.redisUrl, LAYERTAP_PREFIX: `${ctx.prefix}-startup`, LAYERTAP_ALLOW_EVICTION: '1' };
  const variants = [
    { key: 'default', args: [], threads: ctx.cores, runs: [] },
    { key: 'one thread', args: ['--threads', '1'], threads: 1, runs: [] },
  ];
  const runs = Math.max(ctx.runs, ctx.quick ? 3 : 7);
  const probe = loadProbe();
  for (const v of variants) await timedRun(dir, env, v.args);
  for (let i = 0; i < runs; i++) {
    for (const v of variants) v.runs.push(await timedRun(dir, env, v.args));
  }
  const load = probe.done();
  ctx.log(`  start to exit (s): ${variants.map((v) => `${v.key} ${v.runs.map((s) => s.toFixed(3)).join(' ')}`).join('; ')}`);
  return variants.map((v, i) => {
    const seconds = median(v.runs);
    return {
      suite: 'startup',
      name: `startup: layertap run, seed ONNX, 3-row .npy${i === 0 ? '' : ` (--threads ${v.threads})`}`,
      ratio: seconds,
      unit: ' s',
      goal: i === 0 ? `<= ${GOAL_SECONDS} s` : '-',
      pass: seconds <= GOAL_SECONDS,
      ours: {
        seconds,
        runs: v.runs.map((s) => Number(s.toFixed(3))),
        spread: Number(spread(v.runs).toFixed(3)),
        rowsPerSecond: 3 / seconds,
        backend: 'onnx',
        threads: v.threads,
      },
      ref: null,
      note: i === 0 ? 'median seconds from process start to exit' : 'informative',
      load,
    };
  });
}
