import { ONNX_ELEM_TYPES, ONNX_FLOAT, withGraphOutputs, type OnnxModel, type OnnxValueInfo } from './onnx-graph.js';
import { onnxContentHash, readOnnxFiles, type OnnxFiles } from './onnx-files.js';
import { modulePath, OnnxTapIndex } from './onnx-module-paths.js';
import { createSession, loadOrt } from './onnx-session.js';
import type { LayerInfo, ModelDescription } from './types.js';

type Shape = (number | null)[];

/** The model's one fed input (graph inputs that are also initializers are overridable weights, not inputs). */
export function onnxInput(model: OnnxModel, source: string): OnnxValueInfo {
  const weights = new Set(model.graph.initializers.map((i) => i.name));
  const inputs = model.graph.inputs.filter((i) => !weights.has(i.name));
  const input = inputs[0];
  if (input === undefined || inputs.length > 1) {
    throw new Error(
      `ONNX model ${source} has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); only single-input models are supported`,
    );
  }
  if (input.elemType !== ONNX_FLOAT) {
    const type = input.elemType === null ? 'of undeclared type' : ONNX_ELEM_TYPES[input.elemType] ?? `of type ${input.elemType}`;
    throw new Error(`ONNX model ${source}: input '${input.name}' is ${type}; layertap feeds float32 inputs`);
  }
  if (input.shape === null || input.shape.length === 0) {
    throw new Error(`ONNX model ${source}: input '${input.name}' declares no shape; layertap needs [batch, ...row shape]`);
  }
  return input;
}

/** A declared shape with symbolic and unknown axes as null. */
function declared(shape: (number | string | null)[]): Shape {
  return shape.map((d) => (typeof d === 'number' ? d : null));
}

/** The input shape as a ModelDescription gives it: the batch axis always null, symbolic axes null. */
export function onnxInputShape(input: OnnxValueInfo): Shape {
  return declared(input.shape ?? []).map((d, i) => (i === 0 ? null : d));
}

/** Describe already-read ONNX files (shared with the runner, which reads them anyway). */
export function describeOnnxFiles(files: OnnxFiles): ModelDescription {
  const input = onnxInput(files.model, files.source);
  const index = new OnnxTapIndex(files.model.graph, files.source);
  return {
    format: 'onnx',
    inputShape: onnxInputShape(input),
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
}

/**
 * Shapes of `tensors` from two runs on zeros, batch 1 and batch 2: an axis that follows the batch
 * size is the batch axis (null), as in a declared shape.
 */
async function probeShapes(files: OnnxFiles, input: OnnxValueInfo, tensors: string[]): Promise<Map<string, Shape>> {
  const shapes = new Map<string, Shape>();
  const row = onnxInputShape(input).slice(1);
  if (tensors.length === 0 || row.some((d) => d === null)) return shapes;
  const perRow = (row as number[]).reduce((a, b) => a * b, 1);
  const ort = await loadOrt();
  const outputs = new Set(files.model.graph.outputs.map((o) => o.name));
  const bytes = withGraphOutputs(
    files.bytes,
    tensors.filter((t) => !outputs.has(t)).map((name) => ({ name, elemType: null })),
  );
  const session = await createSession(ort, files, bytes, { intraOpThreads: 1 });
  try {
    const dims: Record<string, readonly number[]>[] = [];
    for (const batch of [1, 2]) {
      const x = new ort.Tensor('float32', new Float32Array(batch * perRow), [batch, ...(row as number[])]);
      const result = await session.run({ [input.name]: x }, tensors);
      dims.push(Object.fromEntries(Object.entries(result).map(([k, v]) => [k, v.dims])));
    }
    for (const t of tensors) {
      const [one, two] = [dims[0]?.[t], dims[1]?.[t]];
      if (one === undefined || two === undefined || one.length !== two.length) continue;
      shapes.set(t, one.map((d, i) => (d === two[i] ? d : null)));
    }
  } finally {
    await session.release();
  }
  return shapes;
}

/** Every node of an ONNX graph: name, op, module path, output tensors, shapes where known, weights it reads. */
export async function listOnnxLayers(uri: string, opts: ListOnnxLayersOptions = {}): Promise<LayerInfo[]> {
  const files = await readOnnxFiles(uri);
  const { graph } = files.model;
  const input = onnxInput(files.model, files.source);
  const known = new Map<string, Shape>();
  for (const v of [...graph.valueInfo, ...graph.outputs]) if (v.shape !== null) known.set(v.name, declared(v.shape));
  const index = new OnnxTapIndex(graph, files.source);
  // as with a TF.js graph's Const nodes, nodes computing from weights alone are hidden by default
  const nodes = graph.nodes.filter((n) => opts.includeConstants === true || n.outputs.some((t) => index.isActivation(t)));
  if (opts.probeShapes !== false) {
    const missing = nodes.flatMap((n) => n.outputs).filter((t) => t !== '' && !known.has(t));
    try {
      for (const [t, shape] of await probeShapes(files, input, missing)) known.set(t, shape);
    } catch {
      // shapes are a convenience: a model the runtime cannot probe is still listed
    }
  }
  const weights = new Map(graph.initializers.map((i) => [i.name, i.dims.reduce((a, b) => a * b, 1)]));
  // exporters hand a weight used twice to its second user through an Identity: it is still that weight
  for (const n of graph.nodes) {
    const size = weights.get(n.inputs[0] ?? '');
    if (n.opType === 'Identity' && size !== undefined && n.outputs[0] !== undefined) weights.set(n.outputs[0], size);
  }
  const producer = new Map<string, string>();
  for (const n of graph.nodes) for (const t of n.outputs) if (t !== '') producer.set(t, n.name === '' ? t : n.name);
  const rows: LayerInfo[] = [
    { name: input.name, className: 'Input', outputShape: onnxInputShape(input), params: 0, inputs: [], outputs: [input.name], module: null },
  ];
  for (const node of nodes) {
    const outs = node.outputs.filter((t) => t !== '');
    const shapes = outs.map((t) => known.get(t) ?? null);
    const single = shapes.length === 1 ? (shapes[0] ?? null) : null;
    rows.push({
      name: node.name,
      className: node.domain === '' || node.domain === 'ai.onnx' ? node.opType : `${node.domain}.${node.opType}`,
      outputShape: shapes.length > 1 && shapes.every((s) => s !== null) ? (shapes as Shape[]) : single,
      // the weights a node reads, as a module owns its parameters
      params: node.opType === 'Identity' ? 0 : node.inputs.reduce((n, t) => n + (weights.get(t) ?? 0), 0),
      inputs: node.inputs.filter((t) => t !== '' && !weights.has(t)).map((t) => producer.get(t) ?? t),
      outputs: outs,
      module: modulePath(node.name),
    });
  }
  return rows;
}
