import { contentHash } from './content-hash.js';
import { inputShapeOf } from '../model-inputs.js';
import { graphInputShape, graphNodes, kerasInputShape, kerasLayerNames } from './model-json.js';
import { readModelFiles, tfjsInputs, type ModelFiles } from './model-files.js';
import { listTfjsLayers, tfjsTapShapes } from './layers.js';
import { loadTfjsRunner, TFJS_LAYOUT } from './runner.js';
import type { ModelDescription, Runtime } from '../types.js';

/** Describe TF.js model files already read: format, inputs, layer names, content hash. */
export function describeFiles(files: ModelFiles): ModelDescription {
  const { json, source, format } = files;
  const layered = format === 'tfjs-layers';
  const inputs = tfjsInputs(files);
  const [first, ...more] = inputs;
  // a model with several inputs is described as it is; for one input, the shape lookups also
  // check that it declares one (and name a model without any input)
  const inputShape = first !== undefined && more.length > 0 ? inputShapeOf(first) : layered ? kerasInputShape(json, source) : graphInputShape(json, source);
  return {
    format,
    inputs,
    inputShape,
    inputLayout: 'nhwc',
    layerNames: layered ? kerasLayerNames(json, source) : graphNodes(json, source).map((n) => n.name),
    contentHash: contentHash(files),
  };
}

/** TF.js LayersModels and GraphModels (model.json, its folder, or builtin:<name>); tfjs itself loads only to run or list a LayersModel. */
export const tfjsRuntime: Runtime = {
  describe: async (uri) => describeFiles(await readModelFiles(uri)),
  inputs: async (uri) => tfjsInputs(await readModelFiles(uri)),
  listLayers: listTfjsLayers,
  load: loadTfjsRunner,
  tapActivations: async (uri, points) => ({ layout: TFJS_LAYOUT, shapes: await tfjsTapShapes(uri, points) }),
};
