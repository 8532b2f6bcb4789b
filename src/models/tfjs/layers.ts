import { selectBackend } from './backend.js';
import { memoryHandler } from './memory-handler.js';
import { readModelFiles, type ModelFiles } from './model-files.js';
import { graphNodeShape, graphNodes, graphTensorNode } from './model-json.js';
import { graphTapTensor, layerTensor } from './tapped-model.js';
import { loadTfjs } from './tfjs.js';
import type { LayerInfo, ListLayersOptions, TapPoint } from '../types.js';

async function layersModelLayers(files: ModelFiles, backend: string): Promise<LayerInfo[]> {
  await selectBackend(backend);
  const tfjs = await loadTfjs();
  const model = await tfjs.layers.loadLayersModel(memoryHandler(tfjs, files));
  try {
    return model.layers.map((layer) => {
      const inputs = new Set<string>();
      for (const node of layer.inboundNodes) for (const from of node.inboundLayers) inputs.add(from.name);
      let outputShape: LayerInfo['outputShape'] = null;
      try {
        outputShape = layer.outputShape;
      } catch {
        // a layer called more than once with different shapes has no single output shape
      }
      return { name: layer.name, className: layer.getClassName(), outputShape, params: layer.countParams(), inputs: [...inputs] };
    });
  } finally {
    model.dispose();
  }
}

function graphModelLayers(files: ModelFiles, includeConstants: boolean): LayerInfo[] {
  const nodes = graphNodes(files.json, files.source);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const size = (shape: (number | null)[] | null): number => (shape === null ? 0 : shape.reduce<number>((n, d) => n * (d ?? 0), 1));
  return nodes
    .filter((n) => includeConstants || n.op !== 'Const')
    .map((node) => {
      const inputs = node.input.filter((i) => !i.startsWith('^')).map(graphTensorNode);
      // the weights an op owns are the constants it consumes, as a module owns its parameters
      const params =
        node.op === 'Const'
          ? 0
          : inputs.reduce((n, name) => {
              const from = byName.get(name);
              return from?.op === 'Const' ? n + size(graphNodeShape(from)) : n;
            }, 0);
      return { name: node.name, className: node.op, outputShape: graphNodeShape(node), params, inputs };
    });
}

/** Every layer (LayersModel) or node (GraphModel) with class/op, output shape, params and inbound names. */
export async function listTfjsLayers(uri: string, opts: ListLayersOptions = {}): Promise<LayerInfo[]> {
  const files = await readModelFiles(uri);
  if (files.format === 'tfjs-graph') return graphModelLayers(files, opts.includeConstants ?? false);
  return layersModelLayers(files, opts.backend ?? 'cpu');
}

type Shape = (number | null)[];

/** What a GraphModel declares of the tensors taps read: a node's first output's `_output_shapes`, when the converter kept them. */
function graphTapShapes(files: ModelFiles, points: readonly TapPoint[]): Array<Shape | null> {
  const byName = new Map(graphNodes(files.json, files.source).map((n) => [n.name, n]));
  return points.map((p) => {
    const node = byName.get(p.layer);
    if (node === undefined) return null;
    let ref: string;
    try {
      ref = graphTapTensor(node, p);
    } catch {
      return null;
    }
    const from = byName.get(graphTensorNode(ref));
    // only a node's first output has its shape declared where graphNodeShape reads it
    const first = ref === graphTensorNode(ref) || ref.endsWith(':0');
    return from !== undefined && first ? graphNodeShape(from) : null;
  });
}

/**
 * The shapes of the tensors taps on `points` read, batch axis first (null where the model does
 * not fix a size): a LayersModel's symbolic tensors, as the runner wires the taps, or what a
 * GraphModel declares.
 */
export async function tfjsTapShapes(uri: string, points: readonly TapPoint[]): Promise<Array<Shape | null>> {
  const files = await readModelFiles(uri);
  if (files.format === 'tfjs-graph') return graphTapShapes(files, points);
  await selectBackend('cpu');
  const tfjs = await loadTfjs();
  const model = await tfjs.layers.loadLayersModel(memoryHandler(tfjs, files));
  try {
    const byName = new Map(model.layers.map((l) => [l.name, l]));
    return points.map((p) => {
      const layer = byName.get(p.layer);
      if (layer === undefined) return null;
      try {
        return layerTensor(layer, p.at).shape;
      } catch {
        return null;
      }
    });
  } finally {
    model.dispose();
  }
}
