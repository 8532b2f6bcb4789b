export { float16ToFloat32, float32ToFloat16, fromFloat16Array, toFloat16Array } from './float16.js';
export type { TapOutput } from './features.js';
export { nearestNames } from './did-you-mean.js';
export type { RowStage } from './row-stage.js';
export { callbackLogger, silentLogger, type Logger, type LogFields, type LogLevel } from './logger.js';
