import type { BatchResult, BatchTask } from './protocol.js';

/**
 * The model thread pool as shard processing sees it: it runs batches and lends out buffers to
 * read the next batches into. {@link EmbedPool} implements it; a wrapper (metrics, tracing) can
 * stand in for the pool without the shard code knowing.
 */
export interface BatchRunner {
  /** threads that run batches at once: shard processing keeps 2 batches per thread in flight */
  readonly threads: number;
  /** Run one batch; its input buffers are transferred to the thread (detached here). */
  run(task: BatchTask, signal?: AbortSignal): Promise<BatchResult>;
  /** A buffer of `bytes` bytes to read a tensor batch into: one a finished batch handed back, else a new one. */
  takeBuffer(bytes: number): ArrayBuffer;
}
