export type { ReadHint, ShardSpec, Source, SourceRow, TableFormat } from './types.js';
export { ImageDirSource, DEFAULT_IMAGE_EXTENSIONS } from './image-dir-source.js';
export type { ImageDirSourceOptions } from './image-dir-source.js';
// Re-exporting the decoder loads sharp in whichever thread imports this barrel. The main thread must
// hold sharp before worker threads use it, or glibc unloads libvips when a worker exits (lovell/sharp#2263).
export { decodeImage, decodeImageInto, decodeImagesInto, decodedLength, MAX_INPUT_PIXELS } from './image-decode.js';
export type { DecodeFailure } from './image-decode.js';
export { NpySource } from './npy-source.js';
export type { NpySourceOptions } from './npy-source.js';
export { parseNpyHeader, readNpyHeader, readNpy, writeNpy } from './npy.js';
export type { NpyArray, NpyDtype, NpyHeader } from './npy.js';
export { createSource, inferSourceType, sourcePath } from './factory.js';
export { TableSource } from './table-source.js';
export { DamagedTableError } from './errors.js';
export type { TableSourceOptions } from './table-source.js';
export { LocalTableLocation } from './table-location.js';
export type { TableLocation } from './table-location.js';
export { S3ImageSource } from './s3-image-source.js';
export type { S3ImageSourceOptions } from './s3-image-source.js';
export { S3TableLocation, clearS3Downloads } from './s3-table-location.js';
export type { SourceKind, SourceSpec } from './factory.js';
export { compareCodePoints } from './path-order.js';
