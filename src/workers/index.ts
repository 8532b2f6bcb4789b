export { EmbedPool, threadEntry, threadsFor, DEFAULT_BATCH_TIMEOUT_MS, type EmbedPoolOptions } from './pool.js';
export type { BatchRunner } from './batch-runner.js';
export type { BatchInput, BatchTask, BatchResult, RowError } from './protocol.js';
export { modelSpecOf } from './model-spec.js';
