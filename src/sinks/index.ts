export type { Sink, SinkWriter } from './types.js';
export { LocalSink } from './local-sink.js';
export type { CleanupOptions } from './local-sink.js';
export { createSink } from './factory.js';
export type { SinkSpec } from './factory.js';
export { S3Sink } from './s3-sink.js';
export type { S3SinkOptions } from './s3-sink.js';
export { checkBucket, destroyS3Clients, formatS3Uri, isS3Uri, loadS3Sdk, parseS3Uri, resolveConnection, s3Client } from './s3-client.js';
export type { S3ConnectionOptions, S3Location, S3Sdk } from './s3-client.js';
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
export { PartWriter, PART_FORMATS, partExtension } from './part-writer.js';
export type { PartFormat } from './part-writer.js';
export { ParquetFileWriter, encodeParquet, loadParquetWasm } from './parquet-file-writer.js';
export { writeErrorsFile } from './errors-file.js';
export type { ErrorRecord } from './errors-file.js';
export { readArrowFile, readPartFile } from './read-arrow.js';
export { errorsName, partName, runPrefix } from './manifest.js';
export { manifestSchema, parseManifest, type ManifestRecordFields } from './manifest-schema.js';
export type {
  ManifestFailedShard,
  ManifestShard,
  ManifestStatus,
  ManifestTap,
  RunManifest,
} from './manifest.js';
