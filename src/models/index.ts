export type {
  LayerInfo,
  ListLayersOptions,
  ModelDescription,
  ModelInputInfo,
  ModelInputs,
  ModelRunner,
  ModelSpec,
  NamedTensor,
  Runtime,
  TapActivations,
  TapOutput,
  TapPoint,
  TensorDataOf,
  TensorDtype,
  RuntimeModule,
  PoolThreadInfo,
} from './types.js';
export {
  backendMismatch,
  defaultRuntimes,
  describeModel,
  importRuntime,
  listLayers,
  loadRunner,
  modelInputs,
  modelTapColumns,
  runtimeFor,
  threadModule,
  threadLimit,
} from './registry.js';
export { tapColumn, type TapShapeContext } from './reductions.js';
export type { RuntimeEntry, RuntimeRegistry } from './registry.js';
export { checkInputs, formatInput, formatInputs, isTensorDtype, singleFloatInput } from './model-inputs.js';
export { selectBackend, tfjsNodeInstalled, TFJS_BACKENDS, type TfjsBackendName } from './tfjs/backend.js';
export { BUILTIN_MODELS, type BuiltinModel } from './tfjs/builtin.js';
export { ModelInputError, UnknownLayerError } from './errors.js';
export { defaultIntraOpThreads } from './onnx/session.js';
export { isOnnxUri } from './onnx/entry.js';
export { moduleChain, modulePath, OnnxTapIndex, type OnnxModule, type OnnxTapPoint } from './onnx/module-paths.js';
