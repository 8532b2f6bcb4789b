export { LayertapClient, newRunId, type EnqueueOptions, type LayertapClientOptions } from './client.js';
export { LayertapWorker, WORKER_DEFAULTS, type LayertapWorkerOptions } from './worker.js';
export { runJob, waitForRun, connectRedis, type RunOptions } from './run.js';
export { settingsFromEnv, redisOptions, redactUrl, DEFAULT_REDIS_URL, type QueueSettings } from './connection.js';
export { EmbeddedRedis, redisAnswers } from './embedded-redis.js';
export { RunRegistry, type InvalidRunRecord, type RunRegistryEvents } from './run-registry.js';
export { processShard, type ShardContext } from '../pipeline/shard-processor.js';
export { finalizeRun } from '../pipeline/finalize.js';
export { SUCCESS_MARKER, PARTIAL_MARKER, CANCELLED_MARKER } from '../storage/layout.js';
export { checkRedis, securityWarnings, isLoopbackHost, RedisSetupError, type RedisCheckOptions, type RedisCheckResult } from './redis-checks.js';
export * from './types.js';
export {
  ScheduleManager,
  SCHEDULES_QUEUE,
  checkScheduleId,
  scheduleTickDataSchema,
  parseScheduleTickData,
  tickRunId,
  TickFailedError,
  UNRESOLVED_FINGERPRINT,
  type ScheduleInfo,
  type Tick,
  type ScheduleTiming,
  type ScheduleTickData,
} from './schedules.js';
export { rebuildRegistry, recordFromManifest, type RebuildOptions, type SkippedManifest } from './registry-rebuild.js';
export { claimSnapshot } from './dedup.js';
export { snapshotKey } from '../pipeline/snapshot.js';
export {
  shardTaskSchema,
  runSpecSchema,
  runJobDataSchema,
  runRecordSchema,
  shardSpecSchema,
  baseRunSchema,
  parseShardTask,
  parseRunSpec,
  parseRunJobData,
  checkedJobData,
  InvalidJobDataError,
} from './schemas.js';
export { RunSpecStore, RANGE_BYTES } from './run-specs.js';
export { failAbandonedPlans, PLANNING_TIMEOUT_MS, ABANDONED_PLAN } from './sweep.js';
