export type { Sink, SinkWriter } from './types.js';
export { LocalSink } from './local-sink.js';
export type { CleanupOptions } from './local-sink.js';
export { createSink } from './factory.js';
export {
  buildSchema,
  describeSchema,
  errorsSchema,
  rowSize,
  tapColumnType,
  FIELD_META,
  ID_COLUMN,
  SCHEMA_META,
} from './arrow-schema.js';
export type { ManifestField, SchemaOptions, TapValueType } from './arrow-schema.js';
export { float16ListData, float32ListData, utf8Data } from './arrow-data.js';
export { float32ToHalfBits, fromHalfBits, halfBitsToFloat32, toHalfBits } from './float16.js';
export { IpcFileWriter } from './ipc-file-writer.js';
export { PartWriter } from './part-writer.js';
export { writeErrorsFile } from './errors-file.js';
export type { ErrorRecord } from './errors-file.js';
export { readArrowFile } from './read-arrow.js';
export { errorsName, partName, runPrefix } from './manifest.js';
export type {
  ManifestFailedShard,
  ManifestShard,
  ManifestStatus,
  ManifestTap,
  RunManifest,
} from './manifest.js';
