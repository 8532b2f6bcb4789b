import type { ModelInputInfo } from '../types.js';

/** A weight as listed in a model.json weights manifest. */
export interface WeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}

/** One group of a weights manifest: its weights are concatenated, then split across `paths`. */
export interface WeightsGroup {
  paths: string[];
  weights: WeightEntry[];
}

/** The parts of a TF.js model.json this package reads; everything else passes through untouched. */
export interface ModelJson {
  modelTopology: Record<string, unknown>;
  weightsManifest: WeightsGroup[];
  format?: string;
  [key: string]: unknown;
}

export type TfjsFormat = 'tfjs-layers' | 'tfjs-graph';

/** A Keras layer entry of a LayersModel topology. */
export interface KerasLayerJson {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

/** A node of a GraphModel topology (a TensorFlow GraphDef node). */
export interface GraphNodeJson {
  name: string;
  op: string;
  input: string[];
  attr: Record<string, unknown>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(source: string, what: string): Error {
  return new Error(`invalid model.json ${source}: ${what}`);
}

/** Parse and minimally validate the text of a model.json; `source` names it in errors. */
export function parseModelJson(text: string, source: string): ModelJson {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalid(source, `not JSON (${(err as Error).message})`);
  }
  return validateModelJson(raw, source);
}

/** Check the shape of an already-parsed model.json object. */
export function validateModelJson(raw: unknown, source: string): ModelJson {
  if (!isRecord(raw)) throw invalid(source, 'expected a JSON object');
  if (!isRecord(raw.modelTopology)) throw invalid(source, 'no modelTopology object');
  const manifest = raw.weightsManifest ?? [];
  if (!Array.isArray(manifest)) throw invalid(source, 'weightsManifest is not an array');
  manifest.forEach((group: unknown, g) => {
    if (!isRecord(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw invalid(source, `weightsManifest[${g}] needs paths and weights arrays`);
    }
    for (const p of group.paths) {
      if (typeof p !== 'string') throw invalid(source, `weightsManifest[${g}].paths holds a non-string`);
    }
    group.weights.forEach((w: unknown, i) => {
      if (
        !isRecord(w) ||
        typeof w.name !== 'string' ||
        typeof w.dtype !== 'string' ||
        !Array.isArray(w.shape) ||
        !w.shape.every((d) => Number.isInteger(d) && (d as number) >= 0)
      ) {
        throw invalid(source, `weightsManifest[${g}].weights[${i}] needs name, dtype and a shape of sizes`);
      }
    });
  });
  return { ...raw, modelTopology: raw.modelTopology, weightsManifest: manifest as WeightsGroup[] };
}

/** Whether a model.json holds a LayersModel or a GraphModel. */
export function detectFormat(json: ModelJson, source: string): TfjsFormat {
  if (json.format === 'graph-model' || Array.isArray(json.modelTopology.node)) return 'tfjs-graph';
  if (json.format === 'layers-model' || kerasConfig(json.modelTopology) !== null) return 'tfjs-layers';
  throw invalid(source, 'neither a LayersModel (modelTopology.config) nor a GraphModel (modelTopology.node)');
}

/** The Keras model config: TF.js writes it at the top level, Keras' own JSON under model_config. */
function kerasConfig(topology: Record<string, unknown>): { className: string; config: unknown } | null {
  const inner = isRecord(topology.model_config) ? topology.model_config : topology;
  if (typeof inner.class_name !== 'string' || inner.config === undefined) return null;
  return { className: inner.class_name, config: inner.config };
}

/** The layers of a LayersModel topology, in topology order. */
export function kerasLayers(json: ModelJson, source: string): KerasLayerJson[] {
  const model = kerasConfig(json.modelTopology);
  if (model === null) throw invalid(source, 'no Keras model config in modelTopology');
  // old Keras Sequential configs are a bare list of layers
  const list = Array.isArray(model.config) ? model.config : isRecord(model.config) ? model.config.layers : undefined;
  if (!Array.isArray(list)) throw invalid(source, 'modelTopology has no layers list');
  return list.map((layer: unknown, i) => {
    if (!isRecord(layer) || typeof layer.class_name !== 'string' || !isRecord(layer.config)) {
      throw invalid(source, `layer ${i} needs class_name and config`);
    }
    const name = typeof layer.name === 'string' ? layer.name : layer.config.name;
    if (typeof name !== 'string') throw invalid(source, `layer ${i} has no name`);
    return {
      name,
      class_name: layer.class_name,
      config: layer.config,
      inbound_nodes: Array.isArray(layer.inbound_nodes) ? layer.inbound_nodes : [],
    };
  });
}

function toShape(value: unknown): (number | null)[] | null {
  if (!Array.isArray(value)) return null;
  return value.map((d) => (typeof d === 'number' && d >= 0 ? d : null));
}

/** Layer names of a LayersModel, in topology order. */
export function kerasLayerNames(json: ModelJson, source: string): string[] {
  return kerasLayers(json, source).map((l) => l.name);
}

/** The single input shape of a LayersModel, batch axis null. */
export function kerasInputShape(json: ModelJson, source: string): (number | null)[] {
  const layers = kerasLayers(json, source);
  const inputs = layers.filter((l) => l.class_name === 'InputLayer');
  if (inputs.length > 1) {
    throw invalid(source, `the model has ${inputs.length} inputs (${inputs.map((l) => l.name).join(', ')}); only single-input models are supported`);
  }
  const carrier = inputs[0] ?? layers[0];
  // Keras 2 writes batch_input_shape, Keras 3 batch_shape; input_shape lacks the batch axis
  const shape =
    toShape(carrier?.config.batch_input_shape) ??
    toShape(carrier?.config.batch_shape) ??
    (Array.isArray(carrier?.config.input_shape) ? [null, ...(toShape(carrier?.config.input_shape) ?? [])] : null);
  if (shape === null) throw invalid(source, 'cannot find the input shape (no InputLayer batch_input_shape)');
  return shape.map((d, i) => (i === 0 ? null : d));
}

/** A Keras dtype: a name, or (Keras 3) a DTypePolicy object carrying one. */
function kerasDtype(value: unknown): string {
  if (typeof value === 'string') return value;
  if (isRecord(value) && isRecord(value.config) && typeof value.config.name === 'string') return value.config.name;
  return 'float32';
}

/**
 * Every input of a LayersModel: its InputLayers in topology order (a Sequential model without
 * one takes its first layer's input, named as Keras names it). Dims have a null batch axis, and
 * are null when no shape is declared.
 */
export function kerasInputs(json: ModelJson, source: string): ModelInputInfo[] {
  const layers = kerasLayers(json, source);
  const inputLayers = layers.filter((l) => l.class_name === 'InputLayer');
  const carriers = inputLayers.length > 0 ? inputLayers : layers.slice(0, 1);
  return carriers.map((l) => {
    const shape =
      toShape(l.config.batch_input_shape) ??
      toShape(l.config.batch_shape) ??
      (Array.isArray(l.config.input_shape) ? [null, ...(toShape(l.config.input_shape) ?? [])] : null);
    return {
      name: l.class_name === 'InputLayer' ? l.name : `${l.name}_input`,
      dtype: kerasDtype(l.config.dtype),
      dims: shape === null ? null : shape.map((d, i) => (i === 0 ? null : d)),
    };
  });
}

/** TensorFlow DataType names as the TF.js dtypes a GraphModel is fed (tfjs-converter's own mapping). */
const TF_DTYPES: Readonly<Record<string, string>> = {
  DT_FLOAT: 'float32',
  DT_HALF: 'float32',
  DT_DOUBLE: 'float32',
  DT_INT32: 'int32',
  DT_INT64: 'int32',
  DT_INT8: 'int32',
  DT_UINT8: 'int32',
  DT_BOOL: 'bool',
  DT_STRING: 'string',
};

/** Every input of a GraphModel: the signature's inputs, else every Placeholder, with a null batch axis. */
export function graphInputs(json: ModelJson, source: string): ModelInputInfo[] {
  const placeholders = graphNodes(json, source).filter((n) => n.op === 'Placeholder');
  const signatureInputs = signatureInputNames(json);
  const inputs = signatureInputs.length > 0 ? placeholders.filter((n) => signatureInputs.includes(n.name)) : placeholders;
  return inputs.map((node) => {
    const type = isRecord(node.attr.dtype) ? node.attr.dtype.type : undefined;
    const shape = graphNodeShape(node);
    return {
      name: node.name,
      // a Placeholder without a dtype takes what it is given: images and tensors give float32
      dtype: typeof type === 'string' ? (TF_DTYPES[type] ?? type.replace(/^DT_/, '').toLowerCase()) : 'float32',
      dims: shape === null ? null : shape.map((d, i) => (i === 0 ? null : d)),
    };
  });
}

/** The nodes of a GraphModel topology. */
export function graphNodes(json: ModelJson, source: string): GraphNodeJson[] {
  const nodes = json.modelTopology.node;
  if (!Array.isArray(nodes)) throw invalid(source, 'modelTopology.node is not an array');
  return nodes.map((node: unknown, i) => {
    if (!isRecord(node) || typeof node.name !== 'string' || typeof node.op !== 'string') {
      throw invalid(source, `node ${i} needs name and op`);
    }
    return {
      name: node.name,
      op: node.op,
      input: Array.isArray(node.input) ? node.input.filter((s): s is string => typeof s === 'string') : [],
      attr: isRecord(node.attr) ? node.attr : {},
    };
  });
}

/** Shape of a TensorShapeProto JSON ({dim: [{size: "-1"}, ...]}); null when the rank is unknown. */
export function tensorShapeProto(value: unknown): (number | null)[] | null {
  if (!isRecord(value) || value.unknownRank === true) return null;
  const dims = value.dim ?? [];
  if (!Array.isArray(dims)) return null;
  return dims.map((d: unknown) => {
    const size = isRecord(d) ? Number(d.size ?? 0) : NaN;
    return Number.isInteger(size) && size >= 0 ? size : null;
  });
}

/** The static output shape a graph node declares, when its attrs carry one. */
export function graphNodeShape(node: GraphNodeJson): (number | null)[] | null {
  const attr = node.attr;
  if (node.op === 'Placeholder' && isRecord(attr.shape)) return tensorShapeProto(attr.shape.shape);
  if (node.op === 'Const' && isRecord(attr.value) && isRecord(attr.value.tensor)) {
    return tensorShapeProto(attr.value.tensor.tensorShape);
  }
  const outputShapes = attr._output_shapes;
  if (isRecord(outputShapes) && isRecord(outputShapes.list) && Array.isArray(outputShapes.list.shape)) {
    return tensorShapeProto(outputShapes.list.shape[0]);
  }
  return null;
}

/** The input node of a GraphModel: the signature's single input, else the single Placeholder. */
export function graphInputNode(json: ModelJson, source: string): GraphNodeJson {
  const nodes = graphNodes(json, source);
  const placeholders = nodes.filter((n) => n.op === 'Placeholder');
  const signatureInputs = signatureInputNames(json);
  const candidates = signatureInputs.length > 0 ? placeholders.filter((n) => signatureInputs.includes(n.name)) : placeholders;
  if (candidates.length !== 1) {
    const names = (candidates.length > 0 ? candidates : placeholders).map((n) => n.name).join(', ');
    throw invalid(source, `expected a single input Placeholder, found ${candidates.length} (${names || 'none'})`);
  }
  return candidates[0] as GraphNodeJson;
}

function signatureInputNames(json: ModelJson): string[] {
  const meta = isRecord(json.userDefinedMetadata) ? json.userDefinedMetadata : {};
  const signature = isRecord(json.signature) ? json.signature : isRecord(meta.signature) ? meta.signature : null;
  if (signature === null || !isRecord(signature.inputs)) return [];
  return Object.values(signature.inputs).flatMap((input) => {
    const name = isRecord(input) && typeof input.name === 'string' ? input.name : null;
    return name === null ? [] : [graphTensorNode(name)];
  });
}

/** The node a graph tensor reference ("node", "node:1", "^node") belongs to. */
export function graphTensorNode(ref: string): string {
  const name = ref.startsWith('^') ? ref.slice(1) : ref;
  const colon = name.lastIndexOf(':');
  return colon > 0 && /^\d+$/.test(name.slice(colon + 1)) ? name.slice(0, colon) : name;
}

/** The input shape of a GraphModel, batch axis null. */
export function graphInputShape(json: ModelJson, source: string): (number | null)[] {
  const node = graphInputNode(json, source);
  const shape = graphNodeShape(node);
  if (shape === null || shape.length === 0) {
    throw invalid(source, `input '${node.name}' has no static shape`);
  }
  return shape.map((d, i) => (i === 0 ? null : d));
}
