import { UnknownLayerError } from '../errors.js';
import { nearestNames } from '../../types/did-you-mean.js';
import type { OnnxGraph, OnnxNode } from './graph.js';

/**
 * PyTorch module paths of an exported graph, and where a tap lands in it.
 *
 * torch.onnx.export (the TorchScript exporter) names each node after the modules it was traced in:
 * '/' + one segment per called module + '/' + op, e.g. '/features/features.1/conv/conv.0/Conv'.
 * A segment is the module's qualified name cut to start at its last non-numeric atom: 'conv.0'
 * for 'features.1.conv.0', 'layers.0' for 'model.layers.0', the whole name when every atom is a
 * number. So a level's full path is its parent's path plus the segment, less the atoms the two
 * share (a Sequential's child repeats the Sequential's name: 'conv' then 'conv.0'; a ModuleList is
 * never called, so 'model' is followed by 'layers.0' directly).
 */

/** Join a parent path and a segment, dropping the longest run of atoms the parent ends with and the segment starts with. */
function joinSegment(parent: string, segment: string): string {
  if (parent === '') return segment;
  const p = parent.split('.');
  const s = segment.split('.');
  for (let k = Math.min(p.length, s.length - 1); k > 0; k--) {
    if (p.slice(p.length - k).every((atom, i) => atom === s[i])) return [...p.slice(0, p.length - k), ...s].join('.');
  }
  return `${parent}.${segment}`;
}

/** The full module paths enclosing a node, outermost first ([] for the root module), or null when the name carries none. */
export function moduleChain(nodeName: string): string[] | null {
  if (!nodeName.startsWith('/')) return null;
  const chain: string[] = [];
  let parent = '';
  for (const segment of nodeName.split('/').slice(1, -1)) {
    if (segment === '') return null;
    parent = joinSegment(parent, segment);
    chain.push(parent);
  }
  return chain;
}

/** The innermost module path of a node ('' for the root module), or null when its name carries none. */
export function modulePath(nodeName: string): string | null {
  const chain = moduleChain(nodeName);
  return chain === null ? null : (chain.at(-1) ?? '');
}

/** A module as the exported graph shows it: its nodes and the tensors crossing its boundary. */
export interface OnnxModule {
  path: string;
  /** its place in the chains of modules enclosing its nodes: 0 for a child of the root module */
  depth: number;
  /** indices into graph.nodes, in graph order */
  nodes: number[];
  /** activations read from outside the module, in the order the module reads them */
  inputs: string[];
  /** tensors made inside the module and read outside it (or graph outputs), in graph order */
  outputs: string[];
}

/** Where a tap reads its tensor, and how the name was understood. */
export interface OnnxTapPoint {
  tensor: string;
  /** 'module' | 'node' | 'tensor' */
  kind: 'module' | 'node' | 'tensor';
}

/** Every name a tap may use on an ONNX graph, and the tensor each one stands for. */
export class OnnxTapIndex {
  readonly modules = new Map<string, OnnxModule>();
  private readonly nodesByName = new Map<string, OnnxNode>();
  /** tensor name -> index of the node making it */
  private readonly producer = new Map<string, number>();
  private readonly weights: Set<string>;
  private readonly graphInputs: Set<string>;
  /** tensors whose value depends on the graph input (not weights, constants or shapes of weights) */
  private readonly activations = new Set<string>();

  constructor(
    private readonly graph: OnnxGraph,
    private readonly source: string,
  ) {
    this.weights = new Set(graph.initializers.map((i) => i.name));
    this.graphInputs = new Set(graph.inputs.map((i) => i.name).filter((n) => !this.weights.has(n)));
    for (const name of this.graphInputs) this.activations.add(name);
    graph.nodes.forEach((node, i) => {
      if (node.name !== '' && !this.nodesByName.has(node.name)) this.nodesByName.set(node.name, node);
      for (const out of node.outputs) if (out !== '') this.producer.set(out, i);
      // exported graphs are topologically sorted, so one pass sees every producer first
      if (node.inputs.some((t) => this.activations.has(t))) for (const out of node.outputs) if (out !== '') this.activations.add(out);
    });
    this.indexModules();
  }

  private indexModules(): void {
    const chains = this.graph.nodes.map((n) => moduleChain(n.name) ?? []);
    chains.forEach((chain, i) => {
      for (const [depth, path] of chain.entries()) {
        let m = this.modules.get(path);
        if (m === undefined) {
          m = { path, depth, nodes: [], inputs: [], outputs: [] };
          this.modules.set(path, m);
        }
        m.nodes.push(i);
      }
    });
    const graphOutputs = new Set(this.graph.outputs.map((o) => o.name));
    // who reads each tensor, to tell which of a module's tensors leave it
    const readers = new Map<string, number[]>();
    this.graph.nodes.forEach((node, i) => {
      for (const t of node.inputs) {
        if (t === '') continue;
        const list = readers.get(t);
        if (list === undefined) readers.set(t, [i]);
        else list.push(i);
      }
    });
    for (const m of this.modules.values()) {
      const inside = new Set(m.nodes);
      const made = new Set<string>();
      for (const i of m.nodes) {
        const node = this.graph.nodes[i] as OnnxNode;
        for (const t of node.inputs) {
          if (t === '' || made.has(t) || m.inputs.includes(t) || !this.activations.has(t)) continue;
          const from = this.producer.get(t);
          if (from === undefined || !inside.has(from)) m.inputs.push(t);
        }
        for (const t of node.outputs) {
          if (t === '') continue;
          made.add(t);
          const leaves = graphOutputs.has(t) || (readers.get(t) ?? []).some((r) => !inside.has(r));
          if (leaves && this.activations.has(t)) m.outputs.push(t);
        }
      }
    }
  }

  /** Names a tap may use: module paths first (what named_modules() shows), then node names, then tensor names. */
  names(): string[] {
    const names = new Set<string>();
    for (const m of this.modules.values()) if (m.outputs.length > 0) names.add(m.path);
    // nodes that compute from weights alone (Constant, an Identity of a shared weight) have no per-row output
    const computes = this.graph.nodes.filter((n) => n.outputs.some((t) => this.activations.has(t)));
    for (const n of computes) if (n.name !== '') names.add(n.name);
    for (const t of this.graphInputs) names.add(t);
    for (const n of computes) for (const t of n.outputs) if (t !== '') names.add(t);
    return [...names];
  }

  /**
   * The modules a tap may name, in the order their first node runs (a module before its
   * children), each with the tensor a tap at output reads or why it cannot read one.
   */
  tappableModules(): Array<{ module: OnnxModule; output: string | null; note?: string }> {
    return [...this.modules.values()]
      .filter((m) => m.path !== '' && m.outputs.length > 0)
      .map((m) => {
        try {
          return { module: m, output: this.moduleTensor(m, m.path, 'output') };
        } catch (err) {
          return { module: m, output: null, note: (err as Error).message };
        }
      });
  }

  /** Whether a tensor's value depends on the graph input (an activation), rather than on weights alone. */
  isActivation(tensor: string): boolean {
    return this.activations.has(tensor);
  }

  /** Whether `tensor` is a graph input (fed, not computed). */
  isGraphInput(tensor: string): boolean {
    return this.graphInputs.has(tensor);
  }

  private fail(layer: string, why: string): Error {
    return new Error(`tap '${layer}' on ${this.source}: ${why}`);
  }

  private nodeTensor(node: OnnxNode, layer: string, at: 'input' | 'output'): string {
    if (node.opType === 'Constant') throw this.fail(layer, `node '${node.name}' is a Constant, not an activation`);
    if (at === 'output') {
      const outs = node.outputs.filter((t) => t !== '');
      if (outs.length > 1) {
        throw this.fail(layer, `node '${node.name}' (${node.opType}) has ${outs.length} outputs (${outs.join(', ')}); tap one of them by tensor name`);
      }
      if (outs[0] === undefined) throw this.fail(layer, `node '${node.name}' has no output`);
      return outs[0];
    }
    // the first input that carries data; weights and constants come after it in every standard op
    const first = node.inputs.find((t) => t !== '' && this.activations.has(t)) ?? node.inputs.find((t) => t !== '' && !this.weights.has(t));
    if (first === undefined) throw this.fail(layer, `node '${node.name}' (${node.opType}) reads no activation; tap it at output`);
    return first;
  }

  private moduleTensor(m: OnnxModule, layer: string, at: 'input' | 'output'): string {
    if (at === 'input') {
      // hook(module, input, output): input[0] is the first activation entering the module
      const first = m.inputs[0];
      if (first === undefined) throw this.fail(layer, `module '${m.path}' reads no activation from outside`);
      return first;
    }
    const last = m.outputs.at(-1);
    if (last === undefined) throw this.fail(layer, `no tensor of module '${m.path}' is used outside it`);
    // the module returns what its last exiting node makes; a node with several such outputs (Split, LSTM) is a tuple
    const from = this.producer.get(last);
    const sameNode = m.outputs.filter((t) => this.producer.get(t) === from);
    if (sameNode.length > 1) {
      throw this.fail(layer, `module '${m.path}' returns ${sameNode.length} tensors (${sameNode.join(', ')}); tap one of them by tensor name`);
    }
    return last;
  }

  /**
   * The tensor a tap reads: `layer` is a node name, a tensor name or a PyTorch module path;
   * `at: input` is the node's (or module's) first activation input, as hook(module, input, output) sees it.
   */
  resolve(layer: string, at: 'input' | 'output'): OnnxTapPoint {
    const node = this.nodesByName.get(layer);
    if (node !== undefined) return { tensor: this.nodeTensor(node, layer, at), kind: 'node' };
    if (this.producer.has(layer) || this.graphInputs.has(layer)) {
      if (at === 'input') {
        const from = this.producer.get(layer);
        const maker = from === undefined ? 'it is a graph input' : `it is made by node '${this.graph.nodes[from]?.name}'`;
        throw this.fail(layer, `'${layer}' is a tensor, which has no input (${maker}); tap a node or module at input`);
      }
      const from = this.producer.get(layer);
      if (from !== undefined && this.graph.nodes[from]?.opType === 'Constant') throw this.fail(layer, `tensor '${layer}' is a Constant, not an activation`);
      return { tensor: layer, kind: 'tensor' };
    }
    const m = this.modules.get(layer);
    if (m !== undefined && m.path !== '') return { tensor: this.moduleTensor(m, layer, at), kind: 'module' };
    if (this.weights.has(layer)) throw this.fail(layer, `'${layer}' is a weight (initializer), not an activation`);
    const names = this.names();
    throw new UnknownLayerError(layer, names, this.source, nearestNames(layer, names));
  }
}
