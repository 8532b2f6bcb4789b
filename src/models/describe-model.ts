import { contentHash } from './content-hash.js';
import { graphInputShape, graphNodes, kerasInputShape, kerasLayerNames } from './model-json.js';
import { readModelFiles, type ModelFiles } from './model-files.js';
import { describeOnnx } from './onnx-describe.js';
import { isOnnxUri } from './onnx-files.js';
import type { ModelDescription } from './types.js';

/** Describe already-read model files (shared with the runner, which reads the files anyway). */
export function describeFiles(files: ModelFiles): ModelDescription {
  const { json, source, format } = files;
  const layered = format === 'tfjs-layers';
  return {
    format,
    inputShape: layered ? kerasInputShape(json, source) : graphInputShape(json, source),
    inputLayout: 'nhwc',
    layerNames: layered ? kerasLayerNames(json, source) : graphNodes(json, source).map((n) => n.name),
    contentHash: contentHash(files),
  };
}

/** Inspect a TF.js model.json, builtin:<name> or .onnx file without loading a runtime: format, input, layer names, content hash. */
export async function describeModel(uri: string): Promise<ModelDescription> {
  if (isOnnxUri(uri)) return describeOnnx(uri);
  return describeFiles(await readModelFiles(uri));
}
