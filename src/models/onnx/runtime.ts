import { describeOnnx, listOnnxLayers, listOnnxModules, onnxInputs, onnxTapShapes } from './describe.js';
import { readOnnxFiles } from './files.js';
import { loadOnnxRunner, ONNX_LAYOUT } from './runner.js';
import type { Runtime } from '../types.js';

/** ONNX models (.onnx files) on onnxruntime, which loads only to run a model or probe its shapes. */
export const onnxRuntime: Runtime = {
  describe: describeOnnx,
  inputs: async (uri) => {
    const files = await readOnnxFiles(uri);
    return onnxInputs(files.model, files.source);
  },
  listLayers: (uri, opts) =>
    listOnnxLayers(uri, { includeConstants: opts.includeConstants ?? false, ...(opts.precision ? { precision: opts.precision } : {}) }),
  listModules: listOnnxModules,
  load: loadOnnxRunner,
  tapActivations: async (uri, points) => ({ layout: ONNX_LAYOUT, shapes: await onnxTapShapes(uri, points) }),
};
