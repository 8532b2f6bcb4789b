export { EmbedPool, threadEntry, threadsFor, type EmbedPoolOptions } from './pool.js';
export type { BatchRunner } from './batch-runner.js';
export type { BatchInput, BatchTask, BatchResult, RowError } from './protocol.js';
export { modelSpecOf } from './model-spec.js';
