// Long-lived workers for property tests that go through the queue: one LayertapWorker (with its
// model thread pool) and one LayertapClient per thread count, each on a key prefix of its own, so
// that a case is an enqueue and a wait (a few hundred milliseconds), not a process start.
import type { JobConfig } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient } from '../../src/queue/client.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { FINAL_STATUSES, type RunSummary } from '../../src/queue/types.js';
import type { EmbedPool } from '../../src/workers/pool.js';
import { REDIS_URL, testPrefix } from './index.js';

interface Lane {
  settings: { redisUrl: string; prefix: string };
  /** clients by the shard window they enqueue runs with */
  clients: Map<number, LayertapClient>;
  worker: LayertapWorker;
  cleanup: () => Promise<void>;
  /** wakes the waits of this lane when its worker has finalized a run */
  waiters: Set<() => void>;
}

/** Workers of 1, 2, ... threads that run jobs to the end, one job at a time per caller. */
export class PropsQueue {
  private constructor(private readonly lanes: Map<number, Lane>) {}

  /**
   * Starts a worker (2 shards at once, as `layertap run`) and a client for each pool; each worker
   * uses its pool, whose models may be loaded already, and closes it when it is closed.
   */
  static async start(pools: readonly EmbedPool[]): Promise<PropsQueue> {
    const lanes = new Map<number, Lane>();
    for (const pool of pools) {
      const threads = pool.threads;
      const { prefix, cleanup } = testPrefix();
      const settings = { redisUrl: REDIS_URL, prefix };
      const waiters = new Set<() => void>();
      const worker = new LayertapWorker({
        settings,
        threads,
        pool,
        concurrency: 2,
        log: () => undefined,
        onRun: () => {
          for (const w of [...waiters]) w();
        },
      });
      lanes.set(threads, { settings, clients: new Map(), worker, cleanup, waiters });
    }
    const q = new PropsQueue(lanes);
    await Promise.all([...lanes.values()].map((l) => l.worker.start()));
    return q;
  }

  /**
   * Resolves the job, enqueues it on the worker of `threads` threads with `window` shard jobs in
   * Redis at a time (each started shard adds the one `window` places after it), and waits until
   * the run has ended.
   */
  async run(config: JobConfig, threads: number, window: number): Promise<RunSummary> {
    const lane = this.lanes.get(threads);
    if (!lane) throw new Error(`no worker of ${threads} thread(s); there are ${[...this.lanes.keys()].join(', ')}`);
    let client = lane.clients.get(window);
    if (!client) {
      client = new LayertapClient(lane.settings, { window });
      await client.waitUntilReady();
      lane.clients.set(window, client);
    }
    const rec = await client.enqueue(await resolveJob(config));
    const end = Date.now() + 60_000;
    for (;;) {
      const s = await client.status(rec.runId);
      if (!s) throw new Error(`no run ${rec.runId}`);
      if (FINAL_STATUSES.includes(s.status)) return s;
      if (Date.now() > end) throw new Error(`run ${rec.runId} did not end within 60 s: ${JSON.stringify(s)}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          lane.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, 100);
        lane.waiters.add(done);
      });
    }
  }

  /** Closes every worker (and its pool) and client, and deletes their keys. */
  async close(): Promise<void> {
    for (const lane of this.lanes.values()) {
      await lane.worker.close({ graceMs: 0 });
      for (const c of lane.clients.values()) await c.close();
      await lane.cleanup();
    }
  }
}
