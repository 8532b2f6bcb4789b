import { availableParallelism } from 'node:os';
import type { RuntimeRegistry } from '../models/registry.js';
import type { Logger } from '../types/logger.js';
import type { BatchRunner } from '../workers/batch-runner.js';
import { EmbedPool, threadsFor } from '../workers/pool.js';
import type { BatchResult, BatchTask } from '../workers/protocol.js';
import type { BatchOrigin, ForwardStats, LayertapWorkerOptions } from './worker-options.js';

/**
 * A pool that tells `onForward` about each batch it runs, so that the shard code and the pool
 * stay unaware of metrics.
 */
class ObservedRunner implements BatchRunner {
  constructor(
    private readonly pool: BatchRunner,
    private readonly origin: BatchOrigin,
    private readonly onForward: (origin: BatchOrigin, stats: ForwardStats) => void,
  ) {}

  get threads(): number {
    return this.pool.threads;
  }

  takeBuffer(bytes: number): ArrayBuffer {
    return this.pool.takeBuffer(bytes);
  }

  async run(task: BatchTask, signal?: AbortSignal): Promise<BatchResult> {
    const rows = task.input.ids.length;
    const t0 = performance.now();
    const res = await this.pool.run(task, signal);
    this.onForward(this.origin, { rows, backend: res.backend, decodeMs: res.decodeMs, forwardMs: res.forwardMs, totalMs: performance.now() - t0 });
    return res;
  }
}

/**
 * A worker's model thread pools, one per thread count: tfjs-node jobs get a single-thread pool,
 * the others share one. Made for the first job that needs one, kept until the worker closes.
 */
export class WorkerPools {
  private readonly pools = new Map<number, EmbedPool>();

  constructor(
    private readonly opts: Pick<LayertapWorkerOptions, 'threads' | 'batchTimeoutMs' | 'threadEntry' | 'onForward' | 'pool'>,
    private readonly runtimes: RuntimeRegistry,
    private readonly log: Logger,
  ) {
    if (opts.pool) this.pools.set(opts.pool.threads, opts.pool);
  }

  /**
   * The pool for a job on `backend`, as processShard sees it: one that tells `onForward` about
   * each batch of `origin` when that is set.
   */
  for(backend: string, origin: BatchOrigin): BatchRunner {
    const pool = this.poolFor(backend);
    const onForward = this.opts.onForward;
    return onForward ? new ObservedRunner(pool, origin, onForward) : pool;
  }

  private poolFor(backend: string): EmbedPool {
    const threads = threadsFor(backend, this.opts.threads ?? availableParallelism(), this.runtimes);
    let pool = this.pools.get(threads);
    if (!pool) {
      pool = new EmbedPool({
        threads,
        backend,
        runtimes: this.runtimes,
        ...(this.opts.batchTimeoutMs !== undefined ? { batchTimeoutMs: this.opts.batchTimeoutMs } : {}),
        ...(this.opts.threadEntry ? { filename: this.opts.threadEntry } : {}),
        onError: (err) => this.log.error({ threads }, `layertap worker: pool: ${err.message}`),
      });
      this.pools.set(threads, pool);
      this.log.info({ threads }, `layertap worker: pool of ${threads} thread(s)`);
    }
    return pool;
  }

  /** Per pool: threads, the fraction of thread time spent running batches, batches waiting. */
  get stats(): Array<{ threads: number; utilization: number; queued: number }> {
    return [...this.pools.values()].map((p) => ({ threads: p.threads, utilization: p.utilization, queued: p.queued }));
  }

  /** Closes every pool (the threads finish their batches first). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((p) => p.close()));
  }
}
