// Where a tensor run's CPU time goes, thread by thread (Linux): runs the ONNX MobileNetV2 job on
// a .npy in this process (queue, pool, Arrow files), once to warm up and once measured, and
// prints core-milliseconds per row for each group of threads, from /proc/self/task/*/stat.
//   node bench/profile-threads.mjs [rows] [threads] [--cpu-prof FILE]
// --cpu-prof writes a V8 CPU profile of the main thread during the measured run.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ONNX_MODEL, writeNpy } from './lib/common.js';
import { benchRedis, InProcessPipeline } from './lib/pipeline.js';

const args = process.argv.slice(2);
const profIndex = args.indexOf('--cpu-prof');
const profFile = profIndex >= 0 ? args.splice(profIndex, 2)[1] : null;
const rows = Number(args[0] ?? 768);
const threads = Number(args[1] ?? 2);
const TICK_MS = 10; // USER_HZ = 100

function taskTimes() {
  const out = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { comm, user: Number(f[11]) * TICK_MS, sys: Number(f[12]) * TICK_MS });
    } catch {
      // the thread ended
    }
  }
  return out;
}

const tmp = await mkdtemp(path.join(tmpdir(), 'layertap-prof-'));
const redis = await benchRedis(() => undefined);
try {
  const npy = await writeNpy(path.join(tmp, 'x.npy'), rows, [3, 224, 224]);
  const config = {
    name: 'prof',
    source: { uri: npy.file },
    model: { uri: ONNX_MODEL, backend: 'onnx' },
    taps: [{ layer: 'classifier.1', at: 'input', as: 'embedding' }],
    batchSize: 32,
    shardSize: 512,
    sink: { uri: path.join(tmp, 'out') },
  };
  const pipe = await InProcessPipeline.start(redis.settings, { threads });
  try {
    await pipe.run(config, tmp);
    const session = profFile ? new Session() : null;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const before = taskTimes();
    const t0 = performance.now();
    await pipe.run(config, tmp);
    const seconds = (performance.now() - t0) / 1000;
    const after = taskTimes();
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(profFile, JSON.stringify(profile));
      session.disconnect();
    }
    const groups = new Map();
    for (const [tid, a] of after) {
      const b = before.get(tid) ?? { user: 0, sys: 0 };
      const ms = a.user + a.sys - (b.user + b.sys);
      // threads are all called "node": tell them apart by what they cost (model threads dominate)
      const name =
        tid === String(process.pid) ? 'main' : a.comm !== 'node' ? a.comm.replace(/[0-9]+$/, '#') : ms / rows > 3 ? 'model thread' : 'other node threads';
      const g = groups.get(name) ?? { user: 0, sys: 0, n: 0 };
      g.user += a.user - b.user;
      g.sys += a.sys - b.sys;
      g.n++;
      groups.set(name, g);
    }
    console.log(`${rows} rows, ${threads} threads: ${(rows / seconds).toFixed(1)} rows/s`);
    let total = 0;
    for (const [name, g] of [...groups].sort((x, y) => y[1].user + y[1].sys - (x[1].user + x[1].sys))) {
      const ms = g.user + g.sys;
      total += ms;
      if (ms > 0)
        console.log(
          `  ${name.padEnd(18)} x${String(g.n).padEnd(3)} ${(ms / rows).toFixed(2).padStart(6)} core-ms/row (user ${(g.user / rows).toFixed(2)}, sys ${(g.sys / rows).toFixed(2)})`,
        );
    }
    console.log(`  ${'total'.padEnd(22)} ${(total / rows).toFixed(2).padStart(6)} core-ms/row`);
  } finally {
    await pipe.close();
  }
} finally {
  await redis.stop?.();
  await rm(tmp, { recursive: true, force: true });
}
