export { EmbedPool, threadEntry, threadsFor, tfjsNodeInstalled, type EmbedPoolOptions } from './pool.js';
export type { BatchInput, BatchTask, BatchResult, RowError } from './protocol.js';
