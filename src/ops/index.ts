export { WorkerMetrics, METRIC_QUEUES, QUEUE_STATES, DEFAULT_METRICS_HOST, type WorkerMetricsOptions } from './metrics.js';
export { createLogger, defaultLogFormat, workerLog, workerLineFields, workerLineLevel, type Logger, type LoggerOptions, type LogFormat, type WorkerLineFields } from './logger.js';
export * from './dashboard/index.js';
export type { BatchOrigin, ForwardStats } from '../queue/worker.js';
