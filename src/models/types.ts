import type { ResolvedHubModel, ResolvedPreprocess, ResolvedTap, ResolvedText } from '../config/resolved.js';
import type { TapOutput } from '../types/features.js';
import type { Registry } from '../types/registry.js';

export type { TapOutput };

/** One layer (LayersModel) or node (GraphModel / ONNX), as `layertap layers` lists it. */
export interface LayerInfo {
  name: string;
  /** Keras class name (LayersModel) or op (GraphModel/ONNX) */
  className: string;
  /** per-model output shape with null for the batch axis, when known */
  outputShape: (number | null)[] | (number | null)[][] | null;
  /** number of weights owned by the layer */
  params: number;
  /** names of the layers feeding this one */
  inputs: string[];
  /** output tensor names (ONNX) */
  outputs?: string[];
  /** the PyTorch module path an exported node belongs to ('' for the root module), null when its name has none (ONNX) */
  module?: string | null;
}

/**
 * A module of a model exported from PyTorch, as named_modules() shows it and as `layertap layers`
 * lists it by default: the name a tap gives in `layer:` and what `at: output` reads (ONNX).
 */
export interface ModuleInfo {
  /** the module path, what a tap names: 'encoder.layer.0' */
  path: string;
  /** how deep it sits: 0 for a child of the whole model, 1 for its children, ... */
  depth: number;
  /** the tensor a tap on it reads at output, null when its output is not one tensor (see `note`) */
  output: string | null;
  /** that tensor's shape, batch axis first, null for a dynamic size; null when unknown */
  outputShape: (number | null)[] | null;
  /** weights its nodes read */
  params: number;
  /** graph nodes inside it */
  nodes: number;
  /** why a tap at output cannot read it, when it cannot (a module returning several tensors) */
  note?: string;
}

/** The element types a model runner takes. */
export type TensorDtype = 'float32' | 'int32' | 'int64';

/** The typed array that carries each {@link TensorDtype}. */
export interface TensorDataOf {
  float32: Float32Array;
  int32: Int32Array;
  int64: BigInt64Array;
}

/**
 * One named input of a forward pass: row-major values of shape `dims`, batch axis first.
 *
 * @example
 * // two rows of five token ids
 * const ids: NamedTensor = { dtype: 'int64', dims: [2, 5], data: BigInt64Array.from([101n, 7n, 8n, 102n, 0n, 101n, 9n, 10n, 11n, 102n]) };
 */
export type NamedTensor = { [D in TensorDtype]: { dtype: D; dims: number[]; data: TensorDataOf[D] } }[TensorDtype];

/** What `ModelRunner.run` takes: one tensor per model input, by input name. */
export type ModelInputs = Record<string, NamedTensor>;

/** One input a model declares. */
export interface ModelInputInfo {
  name: string;
  /**
   * element type as the model declares it: 'float32' | 'int32' | 'int64' are what a runner
   * takes; others ('bool', 'float16', ...) are listed so that a description names them, and
   * 'undeclared' when the model does not say
   */
  dtype: string;
  /**
   * sizes, batch axis first; null for an axis without a fixed size (the batch axis of most
   * models, a sequence length). null as a whole when the model declares no shape.
   */
  dims: (number | null)[] | null;
  /** per axis, the symbolic name the model gives a dynamic axis ('batch', 'sequence'), else null; only when it names one (ONNX) */
  dimNames?: (string | null)[];
}

/** What can be learned about a model without running it. */
export interface ModelDescription {
  /** 'tfjs-layers' | 'tfjs-graph' | 'onnx' */
  format: string;
  /** every input the model is fed, in the model's order */
  inputs: ModelInputInfo[];
  /** the first input's shape with a null batch axis, e.g. [null, 224, 224, 3] ([] when it declares none) */
  inputShape: (number | null)[];
  /** layout of a 4-d image input: 'nhwc' (TF.js) or 'nchw' (ONNX) */
  inputLayout: 'nhwc' | 'nchw';
  /** layer/node names a tap may name */
  layerNames: string[];
  /** sha256 (hex) of topology + weight bytes */
  contentHash: string;
  /**
   * Text models, where the graph shows them: rows of the embedding table `input_ids` indexes
   * (ids must be below it) and of the position table (tokens per row must not exceed it).
   */
  tokenTables?: { vocabulary?: number; positions?: number };
  /**
   * Throws when a tap on a listed name cannot be placed (e.g. a module that returns several
   * tensors, a constant), so that a job fails before any work. Absent when every listed name can be tapped.
   */
  checkTap?(layer: string, at: 'input' | 'output'): void;
}

/** A loaded model that runs a batch and returns every tap from ONE forward pass. */
export interface ModelRunner {
  /** backend actually in use, e.g. 'wasm', 'cpu', 'tensorflow', 'onnx' */
  readonly backend: string;
  /** native layout of 4-d activations: 'nhwc' (TF.js) or 'nchw' (ONNX) */
  readonly layout: 'nhwc' | 'nchw';
  /** the inputs run() needs, as the model declares them */
  readonly inputs: readonly ModelInputInfo[];
  /**
   * One forward pass over a batch: every input the model declares, by name, with the same
   * number of rows (dims[0]). Fails with a {@link ModelInputError} naming the input when one is
   * missing or unknown, or has another dtype or dims than the model takes. The input buffers are
   * only read, and no returned feature is a view of them.
   */
  run(inputs: ModelInputs): Promise<Record<string, TapOutput>>;
  dispose(): Promise<void>;
}

/**
 * Where a pool thread finds a runtime: a module it can `import()` (a file: URL or a package
 * name) and the name of the export that is the {@link Runtime}. Pool threads are handed data,
 * never functions, so a runtime reaches them this way.
 */
export interface RuntimeModule {
  url: string;
  export: string;
}

/**
 * What a pool puts in its threads' workerData so that a runtime with its own thread pool can size
 * it: pool threads x intra-op threads should not exceed the cores.
 */
export interface PoolThreadInfo {
  layertapPoolThreads: number;
}

/** What a thread needs to load and run a model. */
export interface ModelSpec {
  uri: string;
  /**
   * the runtime that runs the model, as the registries that planned or took the job name it
   * (`RuntimeEntry.module`). @defaultValue the built-in runtime that handles `uri`
   */
  runtime?: RuntimeModule;
  /** a backend of the model's runtime, or 'auto' */
  backend: string;
  taps: ResolvedTap[];
  /** per-row shape of the one float32 input that image and tensor batches feed, e.g. [3, 224, 224] */
  inputShape: number[];
  fingerprint: string;
  preprocess: ResolvedPreprocess | null;
  /**
   * text models: how rows are tokenized, and the job's taps, which the thread pools over each
   * row's real tokens; `taps` then holds each tapped tensor once, unreduced
   */
  text?: { spec: ResolvedText; taps: ResolvedTap[] };
  /** ONNX: threads one forward pass may use. @defaultValue cores / pool threads, at least 1 */
  intraOpThreads?: number;
  /** ONNX: `int8` runs the model with its weight products quantized (models/onnx/quantize.ts). @defaultValue fp32 */
  precision?: 'int8';
  /** a model of the Hub: the commit `uri` (in the planning host's Hub cache) holds, which a host without it fetches */
  hub?: ResolvedHubModel;
}

/** Where a tap reads: a layer (or node, or module path) and which side of it. */
export type TapPoint = Pick<ResolvedTap, 'layer' | 'at'>;

/** The activations taps read, as a model tells them without a batch being run. */
export interface TapActivations {
  /** native layout of the activations, as its runner has it ({@link ModelRunner.layout}) */
  layout: 'nhwc' | 'nchw';
  /** per tap point, the activation's shape, batch axis first, null for a size the model does not fix; null when the model does not tell */
  shapes: Array<(number | null)[] | null>;
}

/** Options of `listLayers`. */
export interface ListLayersOptions {
  /** TF.js: the backend to load a LayersModel on. @defaultValue cpu (shapes and params need no speed) */
  backend?: string;
  /** also list a GraphModel's Const (weight) nodes, or an ONNX graph's Constant nodes. @defaultValue false */
  includeConstants?: boolean;
  /** ONNX: list the graph as `model.precision: int8` runs it (quantized nodes show their int8 op). @defaultValue fp32 */
  precision?: 'int8';
}

/**
 * What a runtime does with the models it handles. A runtime's module is imported only when a
 * model of it is first described, listed or run (see `RuntimeEntry`).
 */
export interface Runtime {
  /** what can be learned about the model without running it */
  describe(uri: string): Promise<ModelDescription>;
  /** the inputs the model declares, read from its files without hashing weights or loading a runtime */
  inputs(uri: string): Promise<ModelInputInfo[]>;
  /** every layer or node, as `layertap layers` lists them */
  listLayers(uri: string, opts: ListLayersOptions): Promise<LayerInfo[]>;
  /** the modules of a model whose node names carry PyTorch module paths, outermost first ([] when they carry none); absent: the runtime has no modules apart from its layers */
  listModules?(uri: string): Promise<ModuleInfo[]>;
  /** the model loaded in the calling thread, with every tap wired into one forward pass */
  load(spec: ModelSpec): Promise<ModelRunner>;
  /**
   * the shapes of the activations `points` read, from the model's files and shape inference;
   * what `layertap plan` sizes columns by. Absent: the runtime cannot tell before a run.
   */
  tapActivations?(uri: string, points: readonly TapPoint[]): Promise<TapActivations>;
}

/**
 * One model runtime: which models it handles, which backends run them, and its module, imported
 * only when one of its models is first described, listed or run.
 */
export interface RuntimeEntry {
  /** whether `uri` names one of its models; entries are asked in order, so a catch-all goes last */
  handles(uri: string): boolean;
  /** the `model.backend` values that run its models, besides 'auto' (which picks one) */
  backends: readonly string[];
  /** what messages call its models: 'TF.js models' */
  models: string;
  /** what messages call one of its models: 'a TF.js model' */
  model: string;
  /** the pool threads one process may run with `backend`, when the backend limits them */
  threadLimit?(backend: string): number | undefined;
  /**
   * the module that holds the runtime, which pool threads import to run its models (they are
   * handed data, never functions): a file: URL or a package name, and the name of its export
   */
  module: RuntimeModule;
  /**
   * the runtime, in the calling thread. @defaultValue the export `module` names, imported
   * (the built-ins import theirs statically, so that a test runs the sources it checks)
   */
  open?(): Promise<Runtime>;
}

/** Model runtimes, asked in order which one handles a model uri. */
export type RuntimeRegistry = Registry<RuntimeEntry>;
