import { contentHash } from './content-hash.js';
import { inputShapeOf } from './model-inputs.js';
import { graphInputs, graphInputShape, graphNodes, kerasInputs, kerasInputShape, kerasLayerNames } from './model-json.js';
import { readModelFiles, type ModelFiles } from './model-files.js';
import { describeOnnx, onnxInputs } from './onnx-describe.js';
import { isOnnxUri, readOnnxFiles } from './onnx-files.js';
import type { ModelDescription, ModelInputInfo } from './types.js';

/** Describe already-read model files (shared with the runner, which reads the files anyway). */
export function describeFiles(files: ModelFiles): ModelDescription {
  const { json, source, format } = files;
  const layered = format === 'tfjs-layers';
  const inputs = layered ? kerasInputs(json, source) : graphInputs(json, source);
  const [first, ...more] = inputs;
  // a model with several inputs is described as it is; for one input, the shape lookups also
  // check that it declares one (and name a model without any input)
  const inputShape =
    first !== undefined && more.length > 0 ? inputShapeOf(first) : layered ? kerasInputShape(json, source) : graphInputShape(json, source);
  return {
    format,
    inputs,
    inputShape,
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

/** The inputs a model declares (name, dtype, dims), read from its files without hashing weights or loading a runtime. */
export async function modelInputs(uri: string): Promise<ModelInputInfo[]> {
  if (isOnnxUri(uri)) {
    const files = await readOnnxFiles(uri);
    return onnxInputs(files.model, files.source);
  }
  const { json, source, format } = await readModelFiles(uri);
  return format === 'tfjs-layers' ? kerasInputs(json, source) : graphInputs(json, source);
}
