import { fileURLToPath } from 'node:url';
import { Registry, UnknownNameError } from '../types/registry.js';
import { TFJS_BACKENDS, tfjsNodeInstalled } from './tfjs/backend.js';
import type { LayerInfo, ListLayersOptions, ModelDescription, ModelInputInfo, ModelRunner, ModelSpec, ModuleInfo, Runtime } from './types.js';
import type { ResolvedTap } from '../config/resolved.js';
import { FieldError } from '../types/errors.js';
import type { TapColumn } from '../types/features.js';
import { tapColumn } from './reductions.js';

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
  /** the runtime */
  open(): Promise<Runtime>;
}

/** Model runtimes, asked in order which one handles a model uri. */
export type RuntimeRegistry = Registry<RuntimeEntry>;

/** True when a model URI names an ONNX file. */
export function isOnnxUri(uri: string): boolean {
  return /\.onnx$/i.test(uri.startsWith('file://') ? fileURLToPath(uri) : uri);
}

/** The runtimes layertap has built in: onnxruntime for .onnx files, TF.js for everything else. */
export function defaultRuntimes(): RuntimeRegistry {
  return new Registry<RuntimeEntry>('model.uri', 'runtime', {
    onnx: {
      handles: isOnnxUri,
      backends: ['onnx'],
      models: '.onnx models',
      model: 'an ONNX model',
      open: async () => (await import('./onnx/runtime.js')).onnxRuntime,
    },
    tfjs: {
      // model.json, its folder, builtin:<name>: whatever no runtime before it takes
      handles: () => true,
      backends: TFJS_BACKENDS,
      models: 'TF.js models',
      model: 'a TF.js model',
      // tfjs-node uses every core itself, and misbehaves with several threads in one process
      threadLimit: (backend) => (backend === 'tensorflow' || (backend === 'auto' && tfjsNodeInstalled()) ? 1 : undefined),
      open: async () => (await import('./tfjs/runtime.js')).tfjsRuntime,
    },
  });
}

/** The runtime that handles `uri`: the first entry that says it does. */
export function runtimeFor(uri: string, runtimes: RuntimeRegistry = defaultRuntimes()): RuntimeEntry {
  const found = runtimes.list().find(([, e]) => e.handles(uri));
  if (found === undefined) throw new FieldError('model.uri', `no runtime takes '${uri}'; runtimes are: ${runtimes.names.join(', ')}`);
  return found[1];
}

/**
 * Why `backend` cannot run `entry`'s model `uri` ("'wasm' runs TF.js models; 'm.onnx' is an ONNX
 * model (backend: auto | onnx)"), or null when it can. A backend no runtime has is an
 * {@link UnknownNameError} listing the ones there are.
 */
export function backendMismatch(uri: string, backend: string, entry: RuntimeEntry, runtimes: RuntimeRegistry = defaultRuntimes()): string | null {
  if (backend === 'auto' || entry.backends.includes(backend)) return null;
  const owner = runtimes.list().find(([, e]) => e.backends.includes(backend));
  if (owner === undefined) {
    throw new UnknownNameError('model.backend', backend, ['auto', ...new Set(runtimes.list().flatMap(([, e]) => e.backends))], 'backend');
  }
  return `'${backend}' runs ${owner[1].models}; '${uri}' is ${entry.model} (backend: ${['auto', ...entry.backends].join(' | ')})`;
}

/** The fewest pool threads one process may run with `backend`, as the runtimes limit it; undefined: no limit. */
export function threadLimit(backend: string, runtimes: RuntimeRegistry = defaultRuntimes()): number | undefined {
  const limits = runtimes.list().flatMap(([, e]) => e.threadLimit?.(backend) ?? []);
  return limits.length > 0 ? Math.min(...limits) : undefined;
}

/** Inspect a model without loading its runtime: format, inputs, layer names, content hash. */
export async function describeModel(uri: string, runtimes: RuntimeRegistry = defaultRuntimes()): Promise<ModelDescription> {
  return (await runtimeFor(uri, runtimes).open()).describe(uri);
}

/** The inputs a model declares (name, dtype, dims), read from its files without hashing weights or loading a runtime. */
export async function modelInputs(uri: string, runtimes: RuntimeRegistry = defaultRuntimes()): Promise<ModelInputInfo[]> {
  return (await runtimeFor(uri, runtimes).open()).inputs(uri);
}

/**
 * Every layer or node with class/op, output shape, params and inbound names; ONNX nodes also
 * carry their output tensors and PyTorch module path.
 */
export async function listLayers(uri: string, opts: ListLayersOptions = {}, runtimes: RuntimeRegistry = defaultRuntimes()): Promise<LayerInfo[]> {
  return (await runtimeFor(uri, runtimes).open()).listLayers(uri, opts);
}

/** The PyTorch modules of a model exported with their paths in its node names, outermost first; [] for a model without them (TF.js layers are listed by {@link listLayers}). */
export async function listModules(uri: string, runtimes: RuntimeRegistry = defaultRuntimes()): Promise<ModuleInfo[]> {
  const runtime = await runtimeFor(uri, runtimes).open();
  return runtime.listModules ? runtime.listModules(uri) : [];
}

/**
 * The columns `taps` write on the model `uri`, learned from its files and shape inference without
 * running a batch: per tap, the per-row shape and layout a run writes (see {@link tapColumn}),
 * or null when the runtime cannot tell (a runtime without `tapActivations`, a GraphModel
 * that declares no shapes).
 */
export async function modelTapColumns(
  uri: string,
  taps: readonly ResolvedTap[],
  /** the model is fed text (it takes input_ids) */
  text: boolean,
  runtimes: RuntimeRegistry = defaultRuntimes(),
): Promise<Array<TapColumn | null>> {
  const runtime = await runtimeFor(uri, runtimes).open();
  if (!runtime.tapActivations) return taps.map(() => null);
  const { layout, shapes } = await runtime.tapActivations(uri, taps);
  return taps.map((tap, i) => {
    const dims = shapes[i];
    return dims ? tapColumn(tap, dims, { layout, text }) : null;
  });
}

/** Load a model (in the calling thread) on its runtime, with every tap wired into one forward pass. */
export async function loadRunner(spec: ModelSpec, runtimes: RuntimeRegistry = defaultRuntimes()): Promise<ModelRunner> {
  if (spec.taps.length === 0) throw new Error(`model ${spec.uri}: no taps; name at least one layer to tap`);
  const entry = runtimeFor(spec.uri, runtimes);
  const mismatch = backendMismatch(spec.uri, spec.backend, entry, runtimes);
  if (mismatch !== null) throw new Error(`backend ${mismatch}`);
  return (await entry.open()).load(spec);
}
