import type { io } from '@tensorflow/tfjs-core';
import type { ModelFiles } from './model-files.js';
import type { Tfjs } from './tfjs.js';

function ownArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  // small Node buffers are slices of a shared pool; tfjs reads the whole ArrayBuffer it is given
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes.buffer : bytes.slice().buffer;
}

/** A tfjs IOHandler over model files already read and path-checked by readModelFiles. */
export function memoryHandler(tfjs: Tfjs, files: ModelFiles): io.IOHandler {
  // tfjs never touches the disk itself, and the bundled builtin models load the same way
  const json = files.json as unknown as io.ModelJSON;
  return {
    load: async () => tfjs.core.io.getModelArtifactsForJSONSync(json, tfjs.core.io.getWeightSpecs(json.weightsManifest), files.weightFiles.map(ownArrayBuffer)),
  };
}
