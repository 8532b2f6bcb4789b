export type {
  LayerInfo,
  ModelDescription,
  ModelInputInfo,
  ModelInputs,
  ModelRunner,
  ModelSpec,
  NamedTensor,
  TapOutput,
  TensorDataOf,
  TensorDtype,
} from './types.js';
export { describeModel, modelInputs } from './describe-model.js';
export { checkInputs, formatInput, formatInputs, isTensorDtype, singleFloatInput } from './model-inputs.js';
export { loadRunner } from './load-runner.js';
export { listLayers, type ListLayersOptions } from './list-layers.js';
export { selectBackend, type TfjsBackendName } from './backend.js';
export { BUILTIN_MODELS, type BuiltinModel } from './builtin.js';
export { ModelInputError, UnknownLayerError } from './errors.js';
export { defaultIntraOpThreads, type PoolThreadInfo } from './onnx-session.js';
export { moduleChain, modulePath, OnnxTapIndex, type OnnxModule, type OnnxTapPoint } from './onnx-module-paths.js';
export { isOnnxUri } from './onnx-files.js';
