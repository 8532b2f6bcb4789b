export type { ShardSpec, Source, SourceRow } from './types.js';
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
export type { SourceKind, SourceSpec } from './factory.js';
export { compareCodePoints } from './path-order.js';
