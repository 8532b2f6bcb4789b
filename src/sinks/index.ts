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
export { IpcFileWriter } from './ipc-file-writer.js';
export { PartWriter, PART_FORMATS, partExtension } from './part-writer.js';
export type { PartFormat } from './part-writer.js';
export { ParquetFileWriter, encodeParquet } from './parquet-file-writer.js';
export { writeErrorsFile } from './errors-file.js';
export type { ErrorRecord } from './errors-file.js';
export { readArrowFile, readPartFile } from './read-arrow.js';
export { manifestSchema, parseManifest, type ManifestRecordFields } from './manifest-schema.js';
export type {
  ManifestFailedShard,
  ManifestShard,
  ManifestStatus,
  ManifestTap,
  RunManifest,
} from './manifest.js';
