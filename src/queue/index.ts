export { LayertapClient, newRunId, type EnqueueOptions } from './client.js';
export { LayertapWorker, type LayertapWorkerOptions } from './worker.js';
export { runJob, waitForRun, connectRedis, type RunOptions } from './run.js';
export { settingsFromEnv, redisOptions, redactUrl, DEFAULT_REDIS_URL, type QueueSettings } from './connection.js';
export { EmbeddedRedis, redisAnswers } from './embedded-redis.js';
export { RunRegistry } from './run-registry.js';
export { processShard, type ShardContext } from './shard-processor.js';
export { finalizeRun } from './run-processor.js';
export * from './types.js';
