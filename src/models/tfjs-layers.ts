import { selectBackend } from './backend.js';
import { memoryHandler } from './memory-handler.js';
import { readModelFiles, type ModelFiles } from './model-files.js';
import { graphNodeShape, graphNodes, graphTensorNode } from './model-json.js';
import { loadTfjs } from './tfjs.js';
import type { LayerInfo, ListLayersOptions } from './types.js';

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
