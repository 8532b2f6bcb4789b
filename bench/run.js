#!/usr/bin/env node
// layertap benchmark suite: throughput ratios against the bare model, a hand-written loop, the
// ideal overlap bound and PyTorch, plus scaling and memory. Not tests: nothing here is asserted
// in the test suite; each figure is a median of timed runs after a warm-up, and every ratio is
// computed from measurements taken in the same invocation, interleaved run by run.
//
//   npm run build
//   npm run bench                          # every suite (20-45 minutes on 2 cores, by CPU)
//   npm run bench -- images taps           # a subset
//   npm run bench -- --quick               # fewer rows and runs (about 5 minutes)
//   npm run bench -- --runs 6 --json       # more runs; the table on stderr, the JSON on stdout
//
// Suites: tensors, images (images-wall: only its wall-clock figure against the strong hand loop;
// images-threads: that figure for thread settings, on every core and on one), taps, scaling,
// pytorch, memory, startup, text, scale, peers-text (against transformers.js, when installed under
// bench/results/peers). Results: a table on stdout and
// bench/results/bench-<time>.json (plus bench/results/latest.json).
// Redis: REDIS_URL, else 127.0.0.1:6379, else a private redis-server; keys under a unique
// prefix, removed at the end.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DIST, dropPrefix, load1, machine, RESULTS, waitForQuiet } from './lib/common.js';
import { benchRedis } from './lib/pipeline.js';
import { imagesSuite, imagesThreadsSuite, imagesWallSuite } from './suites/images.js';
import { memorySuite } from './suites/memory.js';
import { pytorchSuite } from './suites/pytorch.js';
import { scalingSuite, tapsSuite, tensorsSuite } from './suites/tensors.js';

const SUITES = {
  tensors: tensorsSuite,
  images: imagesSuite,
  'images-wall': imagesWallSuite,
  'images-threads': imagesThreadsSuite,
  taps: tapsSuite,
  scaling: scalingSuite,
  pytorch: pytorchSuite,
  memory: memorySuite,
  startup: (ctx) => import('./suites/startup.js').then((m) => m.startupSuite(ctx)),
  text: (ctx) => import('./suites/text.js').then((m) => m.textSuite(ctx)),
  scale: (ctx) => import('./suites/scale.js').then((m) => m.scaleSuite(ctx)),
  'peers-text': (ctx) => import('./suites/peers-text.js').then((m) => m.peersTextSuite(ctx)),
};

function usage(message) {
  if (message) process.stderr.write(`${message}\n\n`);
  process.stderr.write(
    `usage: npm run bench -- [${Object.keys(SUITES).join('|')} ...] [--quick] [--runs N] [--json] [--max-load L]\n` +
      '  --quick      fewer rows and 2 timed runs per figure\n' +
      '  --runs N     timed runs per figure after the warm-up (default 4, quick 2)\n' +
      '  --max-load L before each suite, wait (up to 2 minutes) until other processes use less than L cores (default 0.25)\n' +
      '  --json       print the JSON result on stdout instead of the table (the table goes to stderr)\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { suites: [], quick: false, runs: undefined, json: false, maxLoad: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') usage();
    else if (a === '--quick') opts.quick = true;
    else if (a === '--json') opts.json = true;
    else if (a === '--runs' || a === '--max-load') {
      const v = Number(argv[++i]);
      if (!(v > 0)) usage(`${a} needs a positive number`);
      if (a === '--runs') opts.runs = Math.round(v);
      else opts.maxLoad = v;
    } else if (a in SUITES) opts.suites.push(a);
    else usage(`unknown argument '${a}'`);
  }
  // images-wall and images-threads only when named: images has the first, the second takes long
  if (opts.suites.length === 0) opts.suites = Object.keys(SUITES).filter((s) => !s.startsWith('images-'));
  opts.runs ??= opts.quick ? 2 : 4;
  return opts;
}

const num = (x) => (x === undefined || x === null || Number.isNaN(x) ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));

function table(rows, m) {
  const head = ['benchmark', 'ratio', 'goal', 'result', 'layertap rows/s', 'reference rows/s', 'backend', 'threads', 'other load'];
  const lines = rows.map((r) => [
    r.name,
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}${r.unit ?? 'x'}`,
    r.goal,
    r.note === 'informative' ? 'info' : r.skipped ? 'skipped' : r.pass ? 'pass' : 'FAIL',
    num(r.ours?.rowsPerSecond),
    num(r.ref?.rowsPerSecond),
    r.ours?.backend ?? '-',
    r.ours?.threads === undefined ? '-' : `${r.ours.threads}${r.ref?.threads !== undefined && r.ref.threads !== r.ours.threads ? ` vs ${r.ref.threads}` : ''}`,
    r.load?.otherCores === undefined || r.load.otherCores === null ? '-' : r.load.otherCores.toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)));
  const fmt = (cols) => cols.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  const out = [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(fmt)];
  out.push('');
  const family = m.cpuFamily !== null ? ` (family ${m.cpuFamily} model ${m.cpuModel}; ${m.simd.join(' ') || 'no SIMD flags'})` : '';
  out.push(`machine: ${m.nproc} cores (nproc), ${m.cpu}${family}, Node ${m.node}, ${m.memGB} GB, ${m.platform}`);
  out.push('ratio: median over rounds of (layertap / reference), each round measuring both back to back after a warm-up round;');
  out.push('rows/s: medians of the same runs; other load: cores used by other processes while the figure was measured');
  return out.join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(path.join(DIST, 'index.js'))) usage("dist/ is missing: run 'npm run build' first");
  const m = machine();
  const log = (line) => process.stderr.write(`${line}\n`);
  const started = Date.now();
  const maxLoad = opts.maxLoad ?? 0.25;
  await mkdir(RESULTS, { recursive: true });
  const tmp = await mkdtemp(path.join(tmpdir(), 'layertap-bench-'));
  const redis = await benchRedis(log);
  let n = 0;
  const ctx = {
    quick: opts.quick,
    runs: opts.runs,
    cores: m.nproc,
    tmp,
    log,
    redisUrl: redis.settings.redisUrl,
    prefix: redis.settings.prefix,
    /** settings with a prefix of their own: pipelines of one suite must not take each other's jobs */
    settings: (name) => ({ ...redis.settings, prefix: `${redis.settings.prefix}-${name}-${n++}` }),
  };
  log(
    `layertap bench: ${opts.suites.join(', ')}${opts.quick ? ' (quick)' : ''}, ${opts.runs} timed runs after a warm-up; ${m.nproc} cores, ${m.cpu}, Node ${m.node}; load average ${load1()}`,
  );
  const rows = [];
  const timings = {};
  try {
    for (const name of opts.suites) {
      const t0 = Date.now();
      log(`[${name}]`);
      await waitForQuiet(maxLoad, 120_000, log);
      try {
        rows.push(...(await SUITES[name](ctx)));
      } catch (err) {
        log(`  ${name} failed: ${err.stack ?? err}`);
        rows.push({ suite: name, name: `${name}: failed`, ratio: null, goal: '-', pass: false, error: String(err.message ?? err) });
      }
      timings[name] = Math.round((Date.now() - t0) / 1000);
      log(`  ${name}: ${timings[name]} s`);
    }
  } finally {
    await dropPrefix(redis.settings.redisUrl, redis.settings.prefix).catch((err) => log(`could not remove the bench keys: ${err.message}`));
    await redis.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  const result = {
    when: new Date().toISOString(),
    machine: m,
    quick: opts.quick,
    runs: opts.runs,
    suites: opts.suites,
    secondsPerSuite: timings,
    seconds: Math.round((Date.now() - started) / 1000),
    rows,
  };
  const stamp = result.when.replace(/[:.]/g, '-');
  const file = path.join(RESULTS, `bench-${stamp}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  await copyFile(file, path.join(RESULTS, 'latest.json'));
  const text = table(rows, m);
  if (opts.json) {
    process.stderr.write(`${text}\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    process.stdout.write(`${text}\n`);
  }
  log(`wrote ${path.relative(process.cwd(), file)} (${result.seconds} s)`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
