export { WorkerMetrics, METRIC_QUEUES, QUEUE_STATES, type WorkerMetricsOptions } from './metrics.js';
export { createLogger, defaultLogFormat, type LoggerOptions, type LogFormat } from './logger.js';
export * from './dashboard/index.js';
export type { BatchOrigin, ForwardStats } from '../queue/worker.js';
