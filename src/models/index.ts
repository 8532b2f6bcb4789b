export type { LayerInfo, ModelDescription, ModelRunner, ModelSpec, TapOutput } from './types.js';
export { describeModel } from './describe-model.js';
export { loadRunner } from './load-runner.js';
export { listLayers, type ListLayersOptions } from './list-layers.js';
export { selectBackend, type TfjsBackendName } from './backend.js';
export { BUILTIN_MODELS, type BuiltinModel } from './builtin.js';
export { UnknownLayerError } from './errors.js';
export { float16ToFloat32, float32ToFloat16, fromFloat16Array, toFloat16Array } from './float16.js';
