import { Registry, UnknownNameError } from '../types/registry.js';
import { onnxEntry } from './onnx/entry.js';
import { tfjsEntry } from './tfjs/entry.js';
import type {
  LayerInfo,
  ListLayersOptions,
  ModelDescription,
  ModelInputInfo,
  ModelRunner,
  ModelSpec,
  ModuleInfo,
  Runtime,
  RuntimeEntry,
  RuntimeModule,
  RuntimeRegistry,
} from './types.js';
import type { ResolvedTap } from '../config/resolved.js';
import { FieldError } from '../types/errors.js';
import type { TapColumn } from '../types/features.js';
import { tapColumn } from './reductions.js';

export type { RuntimeEntry, RuntimeRegistry } from './types.js';

/** The runtimes layertap has built in: onnxruntime for .onnx files, TF.js for everything else (a catch-all, so last). */
export function defaultRuntimes(): RuntimeRegistry {
  return new Registry<RuntimeEntry>('model.uri', 'runtime', { onnx: onnxEntry, tfjs: tfjsEntry });
}

/** The runtime `module` names: its export, checked to be one. */
export async function importRuntime(module: RuntimeModule): Promise<Runtime> {
  const exports = (await import(module.url)) as Record<string, unknown>;
  const runtime = exports[module.export] as Partial<Runtime> | undefined;
  if (typeof runtime?.describe !== 'function' || typeof runtime.load !== 'function') {
    throw new Error(`${module.url} exports no runtime '${module.export}' (an object with describe, inputs, listLayers and load)`);
  }
  return runtime as Runtime;
}

/** An entry's runtime, loaded in the calling thread. */
function openRuntime(entry: RuntimeEntry): Promise<Runtime> {
  return entry.open ? entry.open() : importRuntime(entry.module);
}

/**
 * Where pool threads import the runtime that handles `uri`. An entry without a module (made by a
 * JavaScript program) is a {@link FieldError} naming the runtime, so that planning refuses the
 * job rather than a thread failing on it.
 */
export function threadModule(uri: string, runtimes: RuntimeRegistry = defaultRuntimes()): RuntimeModule {
  const entry = runtimeFor(uri, runtimes);
  const module = entry.module as RuntimeModule | undefined;
  if (typeof module?.url !== 'string' || typeof module.export !== 'string') {
    const name = runtimes.list().find(([, e]) => e === entry)?.[0] ?? '?';
    throw new FieldError('model.uri', `runtime '${name}' names no module for the pool threads to import (RuntimeEntry.module: { url, export })`);
  }
  return module;
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
  return (await openRuntime(runtimeFor(uri, runtimes))).describe(uri);
}

/** The inputs a model declares (name, dtype, dims), read from its files without hashing weights or loading a runtime. */
export async function modelInputs(uri: string, runtimes: RuntimeRegistry = defaultRuntimes()): Promise<ModelInputInfo[]> {
  return (await openRuntime(runtimeFor(uri, runtimes))).inputs(uri);
}

/**
 * Every layer or node with class/op, output shape, params and inbound names; ONNX nodes also
 * carry their output tensors and PyTorch module path.
 */
export async function listLayers(uri: string, opts: ListLayersOptions = {}, runtimes: RuntimeRegistry = defaultRuntimes()): Promise<LayerInfo[]> {
  return (await openRuntime(runtimeFor(uri, runtimes))).listLayers(uri, opts);
}

/** The PyTorch modules of a model exported with their paths in its node names, outermost first; [] for a model without them (TF.js layers are listed by {@link listLayers}). */
export async function listModules(uri: string, runtimes: RuntimeRegistry = defaultRuntimes()): Promise<ModuleInfo[]> {
  const runtime = await openRuntime(runtimeFor(uri, runtimes));
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
  const runtime = await openRuntime(runtimeFor(uri, runtimes));
  if (!runtime.tapActivations) return taps.map(() => null);
  const { layout, shapes } = await runtime.tapActivations(uri, taps);
  return taps.map((tap, i) => {
    const dims = shapes[i];
    return dims ? tapColumn(tap, dims, { layout, text }) : null;
  });
}

/**
 * Load a model (in the calling thread) on its runtime, with every tap wired into one forward
 * pass: the runtime `spec.runtime` names (what pool threads are handed), else the one of
 * `runtimes` that handles the model, on a backend it has.
 */
export async function loadRunner(spec: ModelSpec, runtimes: RuntimeRegistry = defaultRuntimes()): Promise<ModelRunner> {
  if (spec.taps.length === 0) throw new Error(`model ${spec.uri}: no taps; name at least one layer to tap`);
  // the backend was checked against the runtime where the module was chosen
  if (spec.runtime) return (await importRuntime(spec.runtime)).load(spec);
  const entry = runtimeFor(spec.uri, runtimes);
  const mismatch = backendMismatch(spec.uri, spec.backend, entry, runtimes);
  if (mismatch !== null) throw new Error(`backend ${mismatch}`);
  return (await openRuntime(entry)).load(spec);
}
