#!/usr/bin/env node
// Memory on a large input: embeds a .npy of many small rows (28x28x1, the seed model) with one
// `layertap worker` process and samples that process's resident memory (threads included)
// from /proc while it works. Run it at two sizes: peak RSS should not grow with the dataset.
//
//   npm run build && node bench/large-input.mjs 120000 20000
//
// Needs Linux (/proc) and redis-server on PATH (a private one is started) or REDIS_URL.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddedRedis } from '../dist/queue/embedded-redis.js';
import { procStatus } from './lib/common.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'bin', 'layertap.js');
const MODEL = join(ROOT, 'test', 'fixtures', 'seed-model', 'tfjs', 'model.json');
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0);
if (sizes.length === 0) sizes.push(120_000, 20_000);

/** A float32 .npy of `rows` x 28x28x1, written in chunks (the bench itself stays small too). */
async function writeRows(file, rows) {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, 28, 28, 1), }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const head = Buffer.alloc(total, 0x20);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  head.writeUInt16LE(total - 10, 8);
  head.write(dict, 10, 'latin1');
  head[total - 1] = 0x0a;
  const out = createWriteStream(file);
  let failed = null;
  out.on('error', (err) => (failed = err));
  const write = (b) =>
    new Promise((res, rej) => {
      if (failed) return rej(failed);
      if (out.write(b)) res();
      else out.once('drain', res);
    });
  await write(head);
  const per = 784;
  const chunkRows = 4096;
  for (let start = 0; start < rows; start += chunkRows) {
    const n = Math.min(chunkRows, rows - start);
    const data = new Float32Array(n * per);
    for (let i = 0; i < n; i++) for (let k = 0; k < per; k++) data[i * per + k] = Math.sin((start + i) * 0.731 + k * 0.37) * 0.5 + 0.5;
    await write(Buffer.from(data.buffer));
  }
  await new Promise((res) => out.end(res));
}

function run(args, env) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const mb = (kb) => (kb / 1024).toFixed(0);

async function bench(rows, redisUrl, dir) {
  const file = join(dir, `rows-${rows}.npy`);
  await writeRows(file, rows);
  const job = join(dir, `job-${rows}.json`);
  await writeFile(
    job,
    JSON.stringify({
      name: `large${rows}`,
      source: { uri: file },
      model: { uri: MODEL },
      taps: [
        { layer: 'linear_class.0', at: 'input', as: 'hidden' },
        { layer: 'conv_32.2', as: 'pooled' },
      ],
      batchSize: 64,
      shardSize: 4096,
      sink: { uri: join(dir, 'out') },
    }),
  );
  const env = { REDIS_URL: redisUrl, LAYERTAP_PREFIX: `bench-large-${rows}-${process.pid}` };
  const worker = spawn(process.execPath, [CLI, 'worker', '--threads', '2', '--concurrency', '2'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  worker.stderr.on('data', (d) => (log += d));
  while (!log.includes('layertap worker: ready')) {
    if (worker.exitCode !== null) throw new Error(`worker exited: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const t0 = Date.now();
  const enq = await run(['enqueue', job, '--json'], env);
  if (enq.code !== 0) throw new Error(enq.stderr);
  const { runId } = JSON.parse(enq.stdout);
  const samples = [];
  let status = null;
  for (;;) {
    const s = await procStatus(worker.pid);
    if (s) samples.push({ t: Date.now() - t0, ...s });
    const st = await run(['status', runId, '--json'], env);
    status = JSON.parse(st.stdout);
    if (['committed', 'failed', 'partial'].includes(status.status)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const seconds = (Date.now() - t0) / 1000;
  const last = await procStatus(worker.pid);
  worker.kill('SIGTERM');
  await new Promise((r) => worker.on('exit', r));
  const peak = Math.max(last?.hwm ?? 0, ...samples.map((s) => s.hwm));
  const q = (f) => samples[Math.min(samples.length - 1, Math.floor(f * samples.length))]?.rss ?? 0;
  return { rows, status: status.status, committed: status.rows, errorRows: status.errorRows, seconds, peak, q };
}

const dir = await mkdtemp(join(tmpdir(), 'layertap-bench-large-'));
let embedded = null;
try {
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    embedded = await EmbeddedRedis.start();
    redisUrl = embedded.url;
  }
  for (const rows of sizes) {
    const r = await bench(rows, redisUrl, dir);
    console.log(
      `${r.rows} rows: ${r.status}, ${r.committed} rows + ${r.errorRows} error rows in ${r.seconds.toFixed(1)} s ` +
        `(${(r.rows / r.seconds).toFixed(0)} rows/s); worker peak RSS ${mb(r.peak)} MB; ` +
        `RSS at 25/50/75/100% of the run: ${[0.25, 0.5, 0.75, 1].map((f) => mb(r.q(f))).join(' / ')} MB`,
    );
  }
} finally {
  await embedded?.stop();
  await rm(dir, { recursive: true, force: true });
}
