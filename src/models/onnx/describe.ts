import { ONNX_ELEM_TYPES, withGraphOutputs, type OnnxModel, type OnnxValueInfo } from './graph.js';
import { onnxContentHash, readOnnxFiles, type OnnxFiles } from './files.js';
import { modulePath, OnnxTapIndex } from './module-paths.js';
import { quantizedOnnx } from './quantize.js';
import { inputShapeOf, isTensorDtype, zeros } from '../model-inputs.js';
import { createSession, loadOrt, ortFeeds } from './session.js';
import type { LayerInfo, ModelDescription, ModelInputInfo, ModelInputs, ModuleInfo, TapPoint } from '../types.js';

type Shape = (number | null)[];

/** A graph input as a description lists it: dtype by name, dynamic axes null (with their symbolic names). */
function inputInfo(v: OnnxValueInfo): ModelInputInfo {
  const dtype = v.elemType === null ? 'undeclared' : (ONNX_ELEM_TYPES[v.elemType] ?? `type ${v.elemType}`);
  const shape = v.shape;
  if (shape === null) return { name: v.name, dtype, dims: null };
  const names = shape.map((d) => (typeof d === 'string' ? d : null));
  return { name: v.name, dtype, dims: declared(shape), ...(names.some((n) => n !== null) ? { dimNames: names } : {}) };
}

/**
 * The inputs a forward pass feeds, in graph order. Graph inputs that are also initializers are
 * weights a caller may override, not inputs.
 */
export function onnxInputs(model: OnnxModel, source: string): ModelInputInfo[] {
  const weights = new Set(model.graph.initializers.map((i) => i.name));
  const inputs = model.graph.inputs.filter((i) => !weights.has(i.name)).map(inputInfo);
  if (inputs.length === 0) throw new Error(`ONNX model ${source} has no inputs to feed (every graph input is a weight)`);
  return inputs;
}

/** A declared shape with symbolic and unknown axes as null. */
function declared(shape: (number | string | null)[]): Shape {
  return shape.map((d) => (typeof d === 'number' ? d : null));
}

/**
 * The token tables of a text model, read off its embedding lookups: the Gather that indexes a
 * 2-d weight with `input_ids` gives the vocabulary size, and one that indexes a weight whose name
 * says 'position' gives the position table's length.
 */
function tokenTables(graph: OnnxFiles['model']['graph']): ModelDescription['tokenTables'] {
  const weights = new Map(graph.initializers.filter((i) => i.dims.length === 2).map((i) => [i.name, i.dims[0]!]));
  const tables: NonNullable<ModelDescription['tokenTables']> = {};
  for (const node of graph.nodes) {
    if (node.opType !== 'Gather') continue;
    const [table, indices] = node.inputs;
    const rows = weights.get(table ?? '');
    if (rows === undefined) continue;
    if (indices === 'input_ids') tables.vocabulary ??= rows;
    else if (/position/i.test(table ?? '')) tables.positions ??= rows;
  }
  return tables.vocabulary !== undefined || tables.positions !== undefined ? tables : undefined;
}

/** Describe ONNX files already read: format, inputs, tappable names, content hash. */
export function describeOnnxFiles(files: OnnxFiles): ModelDescription {
  const inputs = onnxInputs(files.model, files.source);
  const index = new OnnxTapIndex(files.model.graph, files.source);
  const tables = tokenTables(files.model.graph);
  return {
    format: 'onnx',
    ...(tables ? { tokenTables: tables } : {}),
    inputs,
    inputShape: inputShapeOf(inputs[0] as ModelInputInfo),
    // PyTorch exports are NCHW; so is every ONNX image model (the Conv op's layout)
    inputLayout: 'nchw',
    layerNames: index.names(),
    contentHash: onnxContentHash(files),
    checkTap: (layer, at) => {
      index.resolve(layer, at);
    },
  };
}

/** Inspect an .onnx file without loading the runtime: input, layer names (with module paths), content hash. */
export async function describeOnnx(uri: string): Promise<ModelDescription> {
  return describeOnnxFiles(await readOnnxFiles(uri));
}

/** Options for {@link listOnnxLayers}. */
export interface ListOnnxLayersOptions {
  /** also list Constant nodes and nodes computing from weights alone. @defaultValue false */
  includeConstants?: boolean;
  /** run the model on zeros (batch 1, then 2) to learn the shapes the graph does not declare. @defaultValue true */
  probeShapes?: boolean;
  /** list the graph `model.precision: int8` runs. @defaultValue fp32 */
  precision?: 'int8';
}

/** What the two shape probes feed: the batch axis 1 then 2 rows, every other dynamic axis (a sequence, a free image size) 8 then 9. */
const PROBE_BATCH = [1, 2] as const;
const PROBE_DYNAMIC = [8, 9] as const;

/**
 * Shapes of `tensors` from two runs on zeros, the second with one more row and every dynamic
 * axis one longer: an axis that changes between them follows the batch size or a dynamic input
 * axis, and is null, as in a declared shape. Empty when an input cannot be made up (a type a
 * runner does not feed, no declared shape).
 */
async function probeShapes(files: OnnxFiles, inputs: readonly ModelInputInfo[], tensors: string[]): Promise<Map<string, Shape>> {
  const shapes = new Map<string, Shape>();
  if (tensors.length === 0) return shapes;
  const feeds: ModelInputs[] = [];
  for (const k of [0, 1] as const) {
    const feed: ModelInputs = {};
    for (const input of inputs) {
      if (input.dims === null || !isTensorDtype(input.dtype)) return shapes;
      feed[input.name] = zeros(
        input.dtype,
        input.dims.map((d, i) => (i === 0 ? PROBE_BATCH[k] : (d ?? PROBE_DYNAMIC[k]))),
      );
    }
    feeds.push(feed);
  }
  const ort = await loadOrt();
  const outputs = new Set(files.model.graph.outputs.map((o) => o.name));
  const bytes = withGraphOutputs(
    files.bytes,
    tensors.filter((t) => !outputs.has(t)).map((name) => ({ name, elemType: null })),
  );
  const session = await createSession(ort, files, bytes, { intraOpThreads: 1 });
  try {
    const dims: Record<string, readonly number[]>[] = [];
    for (const feed of feeds) {
      const result = await session.run(ortFeeds(ort, feed), tensors);
      dims.push(Object.fromEntries(Object.entries(result).map(([k, v]) => [k, v.dims])));
    }
    for (const t of tensors) {
      const [one, two] = [dims[0]?.[t], dims[1]?.[t]];
      if (one === undefined || two === undefined || one.length !== two.length) continue;
      shapes.set(
        t,
        one.map((d, i) => (d === two[i] ? d : null)),
      );
    }
  } finally {
    await session.release();
  }
  return shapes;
}

/**
 * Shapes of `tensors` (and of every tensor whose shape the graph declares): as declared, else,
 * with `probe`, from {@link probeShapes}; a tensor neither tells is absent.
 */
async function tensorShapes(files: OnnxFiles, inputs: readonly ModelInputInfo[], tensors: readonly string[], probe: boolean): Promise<Map<string, Shape>> {
  const { graph } = files.model;
  const known = new Map<string, Shape>();
  for (const input of inputs) if (input.dims !== null) known.set(input.name, input.dims);
  for (const v of [...graph.valueInfo, ...graph.outputs]) if (v.shape !== null) known.set(v.name, declared(v.shape));
  if (probe) {
    const missing = [...new Set(tensors)].filter((t) => t !== '' && !known.has(t));
    try {
      for (const [t, shape] of await probeShapes(files, inputs, missing)) known.set(t, shape);
    } catch {
      // shapes are a convenience: a model the runtime cannot probe is still described
    }
  }
  return known;
}

/**
 * The shapes of the tensors taps on `points` read (module paths, node names or tensor names, as
 * a runner resolves them), batch axis first, null for a size that follows an input's dynamic axis.
 */
export async function onnxTapShapes(uri: string, points: readonly TapPoint[]): Promise<Array<Shape | null>> {
  const files = await readOnnxFiles(uri);
  const index = new OnnxTapIndex(files.model.graph, files.source);
  const tensors = points.map((p) => index.resolve(p.layer, p.at).tensor);
  const known = await tensorShapes(files, onnxInputs(files.model, files.source), tensors, true);
  return tensors.map((t) => known.get(t) ?? null);
}

/** Weight sizes by tensor name, with an Identity of a weight counted as that weight (exporters hand a weight used twice to its second user through one). */
function weightSizes(graph: OnnxFiles['model']['graph']): Map<string, number> {
  const weights = new Map(graph.initializers.map((i) => [i.name, i.dims.reduce((a, b) => a * b, 1)]));
  for (const n of graph.nodes) {
    const size = weights.get(n.inputs[0] ?? '');
    if (n.opType === 'Identity' && size !== undefined && n.outputs[0] !== undefined) weights.set(n.outputs[0], size);
  }
  return weights;
}

/** The weights a node reads, as a module owns its parameters. */
function nodeParams(node: OnnxFiles['model']['graph']['nodes'][number], weights: Map<string, number>): number {
  return node.opType === 'Identity' ? 0 : node.inputs.reduce((n, t) => n + (weights.get(t) ?? 0), 0);
}

/**
 * The PyTorch modules of an exported graph ([] when its node names carry no module paths): each
 * with what a tap at output reads, that tensor's shape (declared, else probed), its weights and nodes.
 */
export async function listOnnxModules(uri: string): Promise<ModuleInfo[]> {
  const files = await readOnnxFiles(uri);
  const { graph } = files.model;
  const index = new OnnxTapIndex(graph, files.source);
  const modules = index.tappableModules();
  if (modules.length === 0) return [];
  const known = await tensorShapes(
    files,
    onnxInputs(files.model, files.source),
    modules.flatMap((m) => (m.output === null ? [] : [m.output])),
    true,
  );
  const weights = weightSizes(graph);
  return modules.map(({ module: m, output, note }) => ({
    path: m.path,
    depth: m.depth,
    output,
    outputShape: output === null ? null : (known.get(output) ?? null),
    params: m.nodes.reduce((n, i) => n + nodeParams(graph.nodes[i]!, weights), 0),
    nodes: m.nodes.length,
    ...(note !== undefined ? { note } : {}),
  }));
}

/** Every node of an ONNX graph: name, op, module path, output tensors, shapes where known, weights it reads. */
export async function listOnnxLayers(uri: string, opts: ListOnnxLayersOptions = {}): Promise<LayerInfo[]> {
  const read = await readOnnxFiles(uri);
  const files = opts.precision === 'int8' ? await quantizedOnnx(read) : read;
  const { graph } = files.model;
  const inputs = onnxInputs(files.model, files.source);
  const index = new OnnxTapIndex(graph, files.source);
  // as with a TF.js graph's Const nodes, nodes computing from weights alone are hidden by default
  const nodes = graph.nodes.filter((n) => opts.includeConstants === true || n.outputs.some((t) => index.isActivation(t)));
  const known = await tensorShapes(
    files,
    inputs,
    nodes.flatMap((n) => n.outputs),
    opts.probeShapes !== false,
  );
  const weights = weightSizes(graph);
  const producer = new Map<string, string>();
  for (const n of graph.nodes) for (const t of n.outputs) if (t !== '') producer.set(t, n.name === '' ? t : n.name);
  const rows: LayerInfo[] = inputs.map((input) => ({
    name: input.name,
    className: 'Input',
    outputShape: input.dims === null ? null : inputShapeOf(input),
    params: 0,
    inputs: [],
    outputs: [input.name],
    module: null,
  }));
  for (const node of nodes) {
    const outs = node.outputs.filter((t) => t !== '');
    const shapes = outs.map((t) => known.get(t) ?? null);
    const single = shapes.length === 1 ? (shapes[0] ?? null) : null;
    rows.push({
      name: node.name,
      className: node.domain === '' || node.domain === 'ai.onnx' ? node.opType : `${node.domain}.${node.opType}`,
      outputShape: shapes.length > 1 && shapes.every((s) => s !== null) ? (shapes as Shape[]) : single,
      // the weights a node reads, as a module owns its parameters
      params: nodeParams(node, weights),
      inputs: node.inputs.filter((t) => t !== '' && !weights.has(t)).map((t) => producer.get(t) ?? t),
      outputs: outs,
      module: modulePath(node.name),
    });
  }
  return rows;
}
