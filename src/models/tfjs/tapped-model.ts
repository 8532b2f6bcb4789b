import type { Tensor } from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import type { ResolvedTap } from '../../config/resolved.js';
import { UnknownLayerError } from '../errors.js';
import { memoryHandler } from './memory-handler.js';
import type { ModelFiles } from './model-files.js';
import { graphInputShape, graphNodes, graphTensorNode, kerasLayerNames, type GraphNodeJson } from './model-json.js';
import type { Tfjs } from './tfjs.js';

/** A loaded model rewired so that one forward pass yields every tapped tensor. */
export interface TappedModel {
  /** per tap, the index of its tensor among forward()'s outputs (taps on the same point share one) */
  outputIndex: number[];
  /** the model's input shape, batch axis null */
  inputShape: (number | null)[];
  /** one forward pass; the caller owns (and disposes) the returned tensors */
  forward(x: Tensor): Promise<Tensor[]>;
  /** whether a tensor forward() returned belongs to the model (a weight) and must outlive the batch */
  isModelTensor(t: Tensor): boolean;
  dispose(): void;
}

type Layer = LayersModel['layers'][number];

function toList<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}

/** The tensor a tap on `layer` reads. */
export function layerTensor(layer: Layer, at: 'input' | 'output'): SymbolicTensor {
  // a layer applied more than once has several inbound nodes; its first call is the one tapped,
  // where PyTorch would fire the hook on every call
  const node = layer.inboundNodes[0];
  const tensor = at === 'input' ? node?.inputTensors[0] : node?.outputTensors[0];
  if (tensor === undefined) throw new Error(`layer '${layer.name}' has no ${at} tensor to tap`);
  return tensor;
}

/** Load a LayersModel and build a model whose outputs are the tapped layers' tensors. */
export async function tapLayersModel(tfjs: Tfjs, files: ModelFiles, taps: ResolvedTap[]): Promise<TappedModel> {
  const declared = kerasLayerNames(files.json, files.source);
  // fail on a misspelt layer before spending time on weights
  for (const tap of taps) {
    if (!declared.includes(tap.layer)) throw new UnknownLayerError(tap.layer, declared, files.source);
  }
  const model = await tfjs.layers.loadLayersModel(memoryHandler(tfjs, files));
  try {
    if (model.inputs.length !== 1) {
      throw new Error(`model ${files.source} has ${model.inputs.length} inputs; only single-input models are supported`);
    }
    const byName = new Map(model.layers.map((l) => [l.name, l]));
    const tensors = taps.map((tap) => {
      const layer = byName.get(tap.layer);
      if (layer === undefined) throw new UnknownLayerError(tap.layer, [...byName.keys()], files.source);
      return layerTensor(layer, tap.at);
    });
    // one layer's input is often another's output: the same tensor may appear once only
    const outputs = [...new Set(tensors)];
    const outputIndex = tensors.map((t) => outputs.indexOf(t));
    const tapModel = tfjs.layers.model({ inputs: model.inputs, outputs });
    const input = model.inputs[0] as SymbolicTensor;
    return {
      outputIndex,
      inputShape: input.shape.map((d, i) => (i === 0 ? null : d)),
      // predictOnBatch runs the whole batch as one pass and frees intermediate activations as it goes
      forward: async (x) => toList(tapModel.predictOnBatch(x)),
      isModelTensor: () => false,
      // the tap model shares the original's layers: disposing the original frees every weight once
      dispose: () => {
        model.dispose();
      },
    };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** The tensor ("node" or "node:k") a tap on a GraphModel's `node` reads. */
export function graphTapTensor(node: GraphNodeJson, tap: Pick<ResolvedTap, 'at'>): string {
  if (node.op === 'Const') throw new Error(`node '${node.name}' is a constant (a weight), not an activation`);
  if (tap.at === 'output') return node.name;
  const first = node.input.find((i) => !i.startsWith('^'));
  if (first === undefined) throw new Error(`node '${node.name}' (${node.op}) has no input to tap; tap it at output`);
  return first;
}

/**
 * Ops whose graphs TF.js runs only through executeAsync (control flow, shapes known only at run
 * time, hash tables), as its graph executor lists them; a graph with any of them is run that way.
 */
const ASYNC_ONLY_OPS = new Set([
  'Switch',
  'Merge',
  'Enter',
  'Exit',
  'NextIteration',
  'StatelessIf',
  'StatelessWhile',
  'if',
  'While',
  'NonMaxSuppressionV2',
  'NonMaxSuppressionV3',
  'NonMaxSuppressionV5',
  'Where',
  'HashTable',
  'HashTableV2',
  'LookupTableImport',
  'LookupTableImportV2',
  'LookupTableFind',
  'LookupTableFindV2',
  'LookupTableSize',
  'LookupTableSizeV2',
]);

/** Load a GraphModel; execute() with the tapped node names gives every tap from one pass. */
export async function tapGraphModel(tfjs: Tfjs, files: ModelFiles, taps: ResolvedTap[]): Promise<TappedModel> {
  const nodes = graphNodes(files.json, files.source);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const names = taps.map((tap) => {
    const node = byName.get(tap.layer);
    if (node === undefined) {
      const choices = nodes.filter((n) => n.op !== 'Const').map((n) => n.name);
      throw new UnknownLayerError(tap.layer, choices, files.source);
    }
    return graphTapTensor(node, tap);
  });
  const unique = [...new Set(names)];
  const outputIndex = names.map((n) => unique.indexOf(n));
  // an input reference ("node:1") must still name a node of this graph
  unique.forEach((name) => {
    if (!byName.has(graphTensorNode(name))) throw new Error(`graph tensor '${name}' names no node of ${files.source}`);
  });

  const model = await tfjs.converter.loadGraphModel(memoryHandler(tfjs, files));
  if (model.inputs.length !== 1) {
    model.dispose();
    throw new Error(`model ${files.source} has ${model.inputs.length} inputs; only single-input models are supported`);
  }
  const weightIds = new Set(Object.values(model.weights).flatMap((ts) => ts.map((t) => t.id)));
  const dynamic = nodes.some((n) => ASYNC_ONLY_OPS.has(n.op));
  return {
    outputIndex,
    inputShape: graphInputShape(files.json, files.source),
    forward: async (x) => {
      return dynamic ? toList(await model.executeAsync(x, unique)) : toList(model.execute(x, unique));
    },
    // an Identity of a weight hands back the weight itself; disposing it would break the model
    isModelTensor: (t) => weightIds.has(t.id),
    dispose: () => {
      model.dispose();
    },
  };
}
