// Shared pieces of the benchmark suite: machine facts, statistics, Redis, temp data.
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DIST = path.join(ROOT, 'dist');
export const RESULTS = path.join(ROOT, 'bench', 'results');
export const CLI = path.join(ROOT, 'bin', 'layertap.js');
export const ONNX_MODEL = path.join(RESULTS, 'mobilenet_v2.onnx');
/** The same network and weights with the pooled features as an output of their own (for loops that cannot tap a layer). */
export const ONNX_FEATURES_MODEL = path.join(RESULTS, 'mobilenet_v2_features.onnx');
export const SEED_MODEL = path.join(ROOT, 'test', 'fixtures', 'seed-model', 'tfjs', 'model.json');

/** Import a compiled module of the project (bench/ runs against dist/, like a user of the package). */
export async function dist(rel) {
  const file = path.join(DIST, rel);
  if (!existsSync(file)) throw new Error(`${file} is missing: run 'npm run build' first`);
  return import(file);
}

export function median(values) {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Relative spread of the timed runs: (max - min) / median. */
export function spread(values) {
  if (values.length < 2) return 0;
  return (Math.max(...values) - Math.min(...values)) / median(values);
}

export function machine() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  let nproc = availableParallelism();
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    // nproc missing: availableParallelism() says the same
  }
  // a virtual machine's model name can hide the generation ("AMD EPYC" for Zen 1 to Zen 4), and
  // the vector units decide much of a CPU runtime's speed: record family, model and SIMD flags too
  const field = (name) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim() ?? null;
  const flags = (field('flags') ?? '').split(/\s+/);
  const simd = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_int8', 'amx_bf16'].filter((f) =>
    flags.includes(f),
  );
  return {
    nproc,
    cpu: model,
    cpuFamily: field('cpu family'),
    cpuModel: field('model'),
    simd,
    // what int8 kernels can use: VNNI dot products (AVX-512 or AVX) and AMX tiles
    int8: { avx512_vnni: flags.includes('avx512_vnni'), avx_vnni: flags.includes('avx_vnni'), amx: flags.includes('amx_int8') || flags.includes('amx_tile') },
    node: process.version,
    memGB: Math.round(totalmem() / 2 ** 30),
    platform: `${process.platform}-${process.arch}`,
    versions: versions(),
  };
}

/** Versions of the runtimes that set the figures. */
function versions() {
  const out = {};
  for (const name of ['onnxruntime-node', 'sharp', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', 'piscina', 'bullmq', 'apache-arrow']) {
    try {
      out[name] = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      out[name] = null;
    }
  }
  return out;
}

/** 1-minute load average, as `uptime` shows it. */
export function load1() {
  return Number(loadavg()[0].toFixed(2));
}

/** Clock ticks of CPU time: the whole machine busy, and this process with its children. */
function cpuTicks() {
  const stat = readFileSync('/proc/stat', 'utf8');
  const f = stat.split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const x = s.slice(s.lastIndexOf(')') + 2).split(' ');
      children.set(Number(d), { ppid: Number(x[1]), ticks: Number(x[11]) + Number(x[12]) + Number(x[13]) + Number(x[14]) });
    } catch {
      // the process ended while we looked
    }
  }
  let mine = 0;
  const stack = [process.pid];
  const seen = new Set();
  while (stack.length > 0) {
    const pid = stack.pop();
    if (seen.has(pid)) continue;
    seen.add(pid);
    mine += children.get(pid)?.ticks ?? 0;
    for (const [c, v] of children) if (v.ppid === pid) stack.push(c);
  }
  return { busy, mine, at: performance.now() };
}

/**
 * CPU used by other processes (in cores) between two snapshots: what the machine's own load
 * took from the measurement. Linux only; null elsewhere.
 */
export function otherLoad() {
  let start;
  try {
    start = cpuTicks();
  } catch {
    return { stop: () => null };
  }
  return {
    stop: () => {
      const end = cpuTicks();
      const seconds = (end.at - start.at) / 1000;
      const other = (end.busy - start.busy - (end.mine - start.mine)) / 100 / seconds;
      return Number(Math.max(0, other).toFixed(2));
    },
  };
}

/** Waits (up to maxMs) until other processes use less than `below` cores (5 s samples); returns that figure. */
export async function waitForQuiet(below, maxMs, log) {
  const until = Date.now() + maxMs;
  let said = false;
  for (;;) {
    const probe = otherLoad();
    await new Promise((r) => setTimeout(r, 5000));
    const other = probe.stop();
    if (other === null || other < below) return other;
    if (Date.now() > until) {
      log(`  other processes still use ${other} cores; running anyway (each figure records the load it ran under)`);
      return other;
    }
    if (!said) log(`  other processes use ${other} cores: waiting up to ${Math.round(maxMs / 1000)} s for a quieter machine`);
    said = true;
  }
}

/** A small deterministic PRNG: the project's own (mulberry32), so bench data matches the demo's and the tests'. */
export const { prng } = await dist('types/prng.js');

/**
 * A float32 .npy of `rows` x `shape`, written in chunks. Values are deterministic, in about
 * [-2, 2] like normalised pixels; `fill(row, out)` may replace them.
 */
export async function writeNpy(file, rows, shape, fill) {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${[rows, ...shape].join(', ')}), }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const head = Buffer.alloc(total, 0x20);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  head.writeUInt16LE(total - 10, 8);
  head.write(dict, 10, 'latin1');
  head[total - 1] = 0x0a;
  await mkdir(path.dirname(file), { recursive: true });
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
  const per = shape.reduce((a, b) => a * b, 1);
  const chunkRows = Math.max(1, Math.floor((8 << 20) / (per * 4)));
  for (let start = 0; start < rows; start += chunkRows) {
    const n = Math.min(chunkRows, rows - start);
    const data = new Float32Array(n * per);
    for (let i = 0; i < n; i++) {
      const row = data.subarray(i * per, (i + 1) * per);
      if (fill) fill(start + i, row);
      else {
        const r = prng(start + i + 1);
        for (let k = 0; k < per; k++) row[k] = r() * 4 - 2;
      }
    }
    await write(Buffer.from(data.buffer));
  }
  await new Promise((res, rej) => out.end((err) => (err ? rej(err) : res())));
  if (failed) throw failed;
  return { file, dataOffset: total, rows, shape };
}

/**
 * `count` varied, photo-like JPEGs (sizes 400-800 px, 4:3, 3:2, 1:1 and portrait; smooth
 * gradients, shapes, texture and noise; quality 80-92), deterministic, cached under bench/results/.
 */
export async function jpegFolder(count) {
  const dir = path.join(RESULTS, `jpegs-${count}`);
  const done = path.join(dir, '.complete');
  if (existsSync(done)) return dir;
  const { default: sharp } = await import('sharp');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const aspects = [
    [4, 3],
    [3, 2],
    [1, 1],
    [3, 4],
    [16, 9],
  ];
  for (let i = 0; i < count; i++) {
    const rnd = prng(1000 + i);
    const [aw, ah] = aspects[i % aspects.length];
    const long = 400 + Math.floor(rnd() * 400);
    const width = aw >= ah ? long : Math.round((long * aw) / ah);
    const height = aw >= ah ? Math.round((long * ah) / aw) : long;
    const px = Buffer.alloc(width * height * 3);
    const c0 = [rnd() * 255, rnd() * 255, rnd() * 255];
    const c1 = [rnd() * 255, rnd() * 255, rnd() * 255];
    const blobs = Array.from({ length: 3 + Math.floor(rnd() * 6) }, () => ({
      x: rnd() * width,
      y: rnd() * height,
      r: (0.05 + rnd() * 0.25) * Math.min(width, height),
      c: [rnd() * 255, rnd() * 255, rnd() * 255],
    }));
    const fx = 0.01 + rnd() * 0.08;
    const fy = 0.01 + rnd() * 0.08;
    const amp = 10 + rnd() * 30;
    const noise = prng(77 + i);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const t = (x / width + y / height) / 2;
        let r = c0[0] * (1 - t) + c1[0] * t;
        let g = c0[1] * (1 - t) + c1[1] * t;
        let b = c0[2] * (1 - t) + c1[2] * t;
        for (const bl of blobs) {
          const dx = x - bl.x;
          const dy = y - bl.y;
          if (dx * dx + dy * dy < bl.r * bl.r) {
            r = (r + bl.c[0]) / 2;
            g = (g + bl.c[1]) / 2;
            b = (b + bl.c[2]) / 2;
          }
        }
        const tex = Math.sin(x * fx) * Math.cos(y * fy) * amp;
        const n = (noise() - 0.5) * 24;
        const o = (y * width + x) * 3;
        px[o] = Math.max(0, Math.min(255, r + tex + n));
        px[o + 1] = Math.max(0, Math.min(255, g + tex * 0.7 + n));
        px[o + 2] = Math.max(0, Math.min(255, b - tex * 0.5 + n));
      }
    }
    const quality = 80 + Math.floor(rnd() * 13);
    const jpeg = await sharp(px, { raw: { width, height, channels: 3 } })
      .jpeg({ quality })
      .toBuffer();
    await writeFile(path.join(dir, `img-${String(i).padStart(5, '0')}.jpg`), jpeg);
  }
  await writeFile(done, `${count}\n`);
  return dir;
}

/** The JPEG files of a folder, sorted, as Uint8Arrays. */
export async function readFolder(dir) {
  const names = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).sort();
  return names.map((n) => new Uint8Array(readFileSync(path.join(dir, n))));
}

/** Deletes every Redis key whose name starts with `prefix` (a bench run's queues and registries). */
export async function dropPrefix(redisUrl, prefix) {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) removed += await redis.del(...keys);
    } while (cursor !== '0');
    return removed;
  } finally {
    redis.disconnect();
  }
}

/** Resident and peak resident memory of a process in kB (Linux `/proc/PID/status`), or null once it is gone. */
export async function procStatus(pid) {
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Spawns node with `args`; resolves { seconds (spawn to exit), stdout } or rejects naming the last stderr lines. */
export function timedNode(args, opts) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', reject);
    child.on('exit', (code) => {
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`${path.basename(args[0])} exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      resolve({ seconds, stdout });
    });
  });
}
