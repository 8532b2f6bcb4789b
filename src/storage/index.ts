export type { Sink, SinkWriter } from './types.js';
export { LocalSink } from './local-sink.js';
export type { CleanupOptions } from './local-sink.js';
export { createSink, defaultSinks } from './registry.js';
export type { SinkEntry, SinkField, SinkRegistry, SinkSpec } from './registry.js';
export { S3Sink } from './s3-sink.js';
export type { S3SinkOptions } from './s3-sink.js';
export {
  checkBucket,
  destroyS3Clients,
  formatS3Uri,
  isS3Uri,
  loadS3Sdk,
  parseS3Uri,
  resolveConnection,
  s3Client,
  s3Connection,
  S3_CONNECTION_FIELDS,
} from './s3-client.js';
export type { S3ConnectionOptions, S3Location, S3Sdk } from './s3-client.js';
export { loadParquetWasm, type ParquetWasm } from './parquet-wasm.js';
export { MANIFEST, SUCCESS_MARKER, PARTIAL_MARKER, partName, errorsName, runPrefix, rowIndexKey, runOfManifestKey, runOfSuccessKey } from './layout.js';
