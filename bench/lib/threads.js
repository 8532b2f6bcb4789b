// Main-thread handles on the reference loops of bench-thread.js.
import { Worker } from 'node:worker_threads';
import { DIST } from './common.js';

const ENTRY = new URL('./bench-thread.js', import.meta.url);

function spawnThread(data) {
  const w = new Worker(ENTRY, { workerData: { dist: DIST, ...data } });
  let waiter = null;
  let failure = null;
  w.on('message', (m) => {
    const next = waiter;
    waiter = null;
    if (m.type === 'error') next?.reject(new Error(m.message));
    else next?.resolve(m);
  });
  w.on('error', (err) => {
    failure = err;
    waiter?.reject(err);
    waiter = null;
  });
  const next = () =>
    new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      waiter = { resolve, reject };
    });
  return { w, next };
}

/** Threads that each loop over their own slice of the rows (message 'ready' awaited). */
export class ThreadGroup {
  static async start(items) {
    const threads = items.map(spawnThread);
    const ready = await Promise.all(threads.map((t) => t.next()));
    return new ThreadGroup(threads, ready[0]?.backend ?? '');
  }

  constructor(threads, backend) {
    this.threads = threads;
    this.backend = backend;
  }

  /** Run `loop` in every thread at once; wall seconds until the last one finishes, and rows done. */
  async time(loop) {
    const t0 = performance.now();
    const done = await Promise.all(
      this.threads.map((t) => {
        const p = t.next();
        t.w.postMessage({ type: 'run', loop });
        return p;
      }),
    );
    return { seconds: (performance.now() - t0) / 1000, rows: done.reduce((n, d) => n + d.rows, 0) };
  }

  async close() {
    await Promise.all(
      this.threads.map(async (t) => {
        const p = t.next().catch(() => undefined);
        t.w.postMessage({ type: 'exit' });
        await p;
        await t.w.terminate();
      }),
    );
  }
}

/** Slices of `rows` rows, whole batches each, for `threads` threads. */
export function slices(rows, batch, threads) {
  const batches = Math.ceil(rows / batch);
  const out = [];
  let start = 0;
  for (let i = 0; i < threads; i++) {
    const n = Math.floor(batches / threads) + (i < batches % threads ? 1 : 0);
    const count = Math.min(n * batch, rows - start);
    out.push({ start, count });
    start += count;
  }
  return out;
}
