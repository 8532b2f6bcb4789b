// Scale: what enqueueing and finalizing cost as the dataset grows, measured on a private
// redis-server (so that its memory is the run's alone), each in a process of its own (so that its
// peak RSS is its own). Goals from docs/scale.md: enqueue of a sparse 10^8-row .npy (97,657
// shards) <= 10 s, <= 400 MB, Redis growth <= 300 B per shard; an image folder of 10^5 files
// <= 300 B per shard + 8 B per row; finalize of 10^5 shards <= 30 s under 400 MB.
import { spawn } from 'node:child_process';
import { mkdir, open, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dist, SEED_MODEL } from '../lib/common.js';

const CHILD = fileURLToPath(new URL('../lib/scale-child.mjs', import.meta.url));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server of our own on a free loopback port, nothing persisted. */
async function privateRedis(dir) {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const { Redis } = await import('ioredis');
  const redis = new Redis({ port, lazyConnect: true, retryStrategy: () => 50 });
  // refused connections while the server starts are expected; connect() below retries
  redis.on('error', () => undefined);
  for (let i = 0; i < 100; i++) {
    try {
      await redis.connect();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    redis,
    /** used_memory after the allocator settled */
    async used() {
      await new Promise((r) => setTimeout(r, 200));
      const info = await redis.info('memory');
      return Number(/used_memory:(\d+)/.exec(info)[1]);
    },
    async stop() {
      redis.disconnect();
      proc.kill('SIGTERM');
    },
  };
}

/** A .npy of `rows` zero rows of 28x28x1 float32 whose data is a hole in the file (no disk used). */
async function sparseNpy(file, rows) {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, 28, 28, 1), }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const head = Buffer.alloc(total, 0x20);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(total - 10, 8);
  head.write(dict, 10, 'latin1');
  head[total - 1] = 0x0a;
  const fh = await open(file, 'w');
  await fh.write(head, 0, total, 0);
  await fh.truncate(total + rows * 784 * 4);
  await fh.close();
  return file;
}

function child(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${args[0]} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`)),
    );
  });
}

async function resolved(spec) {
  const [{ parseJob }, { resolveJob }] = await Promise.all([dist('config/load.js'), dist('pipeline/plan.js')]);
  return resolveJob(parseJob(spec));
}

function row(name, value, unit, goal, pass, extra = {}) {
  return { suite: 'scale', name, ratio: value, unit, goal, pass, note: undefined, ...extra };
}

/** Enqueue `spec` in a child process; Redis growth measured around it. */
async function measureEnqueue(ctx, redis, spec, tag) {
  const job = await resolved(spec);
  const file = path.join(ctx.tmp, `scale-${tag}.json`);
  await writeFile(file, JSON.stringify(job));
  const before = await redis.used();
  const r = await child(['enqueue', file, redis.url, `bench-${tag}`]);
  const grown = (await redis.used()) - before;
  return { ...r, grown };
}

export async function scaleSuite(ctx) {
  const rows = [];
  const dir = path.join(ctx.tmp, 'scale');
  await mkdir(dir, { recursive: true });
  const redis = await privateRedis(dir);
  try {
    // 1. a sparse .npy: 10^8 rows (10^7 quick), shards of 1024
    const n = ctx.quick ? 10_000_000 : 100_000_000;
    const npy = await sparseNpy(path.join(dir, `sparse-${n}.npy`), n);
    const e = await measureEnqueue(
      ctx,
      redis,
      {
        name: 'scale-npy',
        source: { uri: npy },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_1.1' }],
        shardSize: 1024,
        sink: { uri: path.join(dir, 'out') },
      },
      'npy',
    );
    const perShard = e.grown / e.shards;
    ctx.log(
      `  .npy of ${n} rows: ${e.shards} shards, enqueue ${e.seconds.toFixed(2)} s, peak RSS ${e.peakRssMB.toFixed(0)} MB, Redis +${e.grown} B (${perShard.toFixed(1)} B/shard)`,
    );
    rows.push(row(`enqueue .npy ${n} rows: seconds`, e.seconds, ' s', '<= 10 s', e.seconds <= 10, { shards: e.shards }));
    rows.push(row(`enqueue .npy ${n} rows: peak RSS`, e.peakRssMB, ' MB', '<= 400 MB', e.peakRssMB <= 400));
    rows.push(row(`enqueue .npy ${n} rows: Redis per shard`, perShard, ' B', '<= 300 B', perShard <= 300, { bytes: e.grown }));

    // 2. an image folder: 10^5 empty .jpg (10^4 quick) in 100 subfolders, shards of 1000
    const files = ctx.quick ? 10_000 : 100_000;
    const root = path.join(dir, 'images');
    for (let d = 0; d < 100; d++) {
      const sub = path.join(root, `d${String(d).padStart(2, '0')}`);
      await mkdir(sub, { recursive: true });
      await Promise.all(Array.from({ length: files / 100 }, (_, f) => writeFile(path.join(sub, `${String(f).padStart(5, '0')}.jpg`), '')));
    }
    const i = await measureEnqueue(
      ctx,
      redis,
      {
        name: 'scale-img',
        source: { uri: root },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_1.1' }],
        shardSize: 1000,
        sink: { uri: path.join(dir, 'out') },
      },
      'img',
    );
    const budget = 300 * i.shards + 8 * i.rows;
    ctx.log(
      `  image folder of ${files} files: ${i.shards} shards, enqueue ${i.seconds.toFixed(2)} s, peak RSS ${i.peakRssMB.toFixed(0)} MB, Redis +${i.grown} B (budget ${budget} B)`,
    );
    rows.push(
      row(`enqueue images ${files} files: Redis`, i.grown / (i.shards + i.rows), ' B/(shard+row)', `<= ${budget} B in all`, i.grown <= budget, {
        bytes: i.grown,
        seconds: i.seconds,
        peakRssMB: i.peakRssMB,
      }),
    );

    // 3. finalize a run of 10^5 shards (10^4 quick): every shard's result as a worker leaves it
    const shards = ctx.quick ? 10_000 : 100_000;
    const fin = await sparseNpy(path.join(dir, `fin-${shards}.npy`), shards);
    const f = await measureEnqueue(
      ctx,
      redis,
      {
        name: 'scale-fin',
        source: { uri: fin },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_1.1' }],
        shardSize: 1,
        sink: { uri: path.join(dir, 'out') },
      },
      'fin',
    );
    const out = path.join(dir, 'out', 'scale-fin');
    const parent = `bench-fin:runs:${f.runId}`;
    // the window's shard jobs are not run here: the parent gets a result per shard as if they were
    await redis.redis.del(`${parent}:dependencies`);
    for (let s = 0; s < shards; s += 1000) {
      const m = redis.redis.multi();
      for (let k = s; k < Math.min(shards, s + 1000); k++) {
        const file = `${out}/part-${String(k).padStart(5, '0')}.arrow`;
        m.hset(
          `${parent}:processed`,
          `bench-fin:shards:${f.runId}-${k}`,
          JSON.stringify({
            index: k,
            rows: 1,
            errorRows: 0,
            file,
            errorsFile: null,
            bytes: 1200,
            seconds: 0.05,
            backend: 'wasm',
            shapes: { linear_1_1: [64] },
            layout: 'nhwc',
            decodeMs: 0.1,
            forwardMs: 2.5,
          }),
        );
      }
      await m.exec();
    }
    const results = await redis.used();
    const r = await child(['finalize', f.runId, redis.url, 'bench-fin']);
    const manifestBytes = (await stat(r.manifest)).size;
    ctx.log(
      `  finalize ${shards} shards: ${r.seconds.toFixed(2)} s, peak RSS ${r.peakRssMB.toFixed(0)} MB, manifest ${manifestBytes} B, Redis ${results} B used with the results`,
    );
    rows.push(row(`finalize ${shards} shards: seconds`, r.seconds, ' s', '<= 30 s', r.seconds <= 30, { manifestBytes }));
    rows.push(row(`finalize ${shards} shards: peak RSS`, r.peakRssMB, ' MB', '<= 400 MB', r.peakRssMB <= 400));
  } finally {
    await redis.stop();
  }
  return rows;
}
