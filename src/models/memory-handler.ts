import type { io } from '@tensorflow/tfjs-core';
import type { ModelFiles } from './model-files.js';
import type { Tfjs } from './tfjs.js';

function ownArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  // small Node buffers are slices of a shared pool; tfjs reads the whole ArrayBuffer it is given
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
    ? bytes.buffer
    : bytes.slice().buffer;
}

/**
 * An IOHandler over files already read (and path-checked) by readModelFiles, so tfjs never touches
 * the disk itself and the same code serves the bundled builtin models.
 */
export function memoryHandler(tfjs: Tfjs, files: ModelFiles): io.IOHandler {
  const json = files.json as unknown as io.ModelJSON;
  return {
    load: async () =>
      tfjs.core.io.getModelArtifactsForJSONSync(
        json,
        tfjs.core.io.getWeightSpecs(json.weightsManifest),
        files.weightFiles.map(ownArrayBuffer),
      ),
  };
}
