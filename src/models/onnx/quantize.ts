import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { onnxContentHash, type OnnxFiles } from './files.js';
import {
  editGraph,
  encodeNode,
  encodeTensor,
  numericAttributes,
  ONNX_FLOAT,
  parseOnnxModel,
  readInitializers,
  type OnnxNode,
  type OnnxTensorData,
} from './graph.js';

/**
 * Dynamic int8 quantization of an ONNX graph, as `model.precision: int8` asks for.
 *
 * Every MatMul whose second input is a 2-d float weight, and every Gemm with a weight B (no
 * transposed A, a bias that is a 1-d weight or none), becomes one onnxruntime
 * `com.microsoft.DynamicQuantizeMatMul` node: the weight is stored as int8, symmetric, one scale per
 * output column; the activation is quantized to uint8 per call, and the product runs on the
 * integer GEMM kernels (VNNI on CPUs that have it). The node keeps the name and output tensor of
 * the one it replaces, so module paths and tap names resolve as before. Embedding lookups (Gather)
 * and products of two activations (attention scores, attention times values) are left in fp32.
 */

/** Bumped whenever the quantized graph for the same input would differ: it names the cache file. */
const QUANTIZER_VERSION = 1;
const INT8 = 3;
const MS_DOMAIN = 'com.microsoft';
const QMAX = 127;

/** The precisions a model can run at. */
export type Precision = 'fp32' | 'int8';

/** One node the quantizer rewrote. */
export interface QuantizedNode {
  name: string;
  /** the op it was: MatMul or Gemm */
  was: string;
  /** the weight it reads, now int8 */
  weight: string;
}

/** An ONNX model quantized in memory, with what was changed. */
export interface QuantizedOnnx {
  files: OnnxFiles;
  nodes: QuantizedNode[];
}

/** Little-endian float32 values of a weight (copied: raw bytes in a protobuf need not be aligned). */
function floats(t: OnnxTensorData, files: OnnxFiles): Float32Array {
  let raw = t.raw;
  if (raw === null) {
    const init = files.model.graph.initializers.find((i) => i.name === t.name);
    const ext = init?.external;
    const file = ext ? files.external.find((e) => e.location === ext.location) : undefined;
    if (!ext || !file) throw new Error(`weight '${t.name}' has no data`);
    const n = t.dims.reduce((a, b) => a * b, 1);
    raw = file.data.subarray(ext.offset, ext.offset + (ext.length ?? n * 4));
  }
  const copy = new Uint8Array(raw.byteLength);
  copy.set(raw);
  return new Float32Array(copy.buffer);
}

/**
 * Symmetric int8 per output column of a [K, N] weight (element [k][n] at `at(k, n)`), each
 * column's scale multiplied by `alpha`.
 */
function quantizeColumns(k: number, n: number, at: (k: number, n: number) => number, alpha: number): { q: Int8Array; scales: Float32Array } {
  const q = new Int8Array(k * n);
  const scales = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    let max = 0;
    for (let r = 0; r < k; r++) max = Math.max(max, Math.abs(at(r, c)));
    const scale = max > 0 ? max / QMAX : 1;
    for (let r = 0; r < k; r++) q[r * n + c] = Math.max(-QMAX, Math.min(QMAX, Math.round(at(r, c) / scale)));
    scales[c] = scale * alpha;
  }
  return { q, scales };
}

/** One node to rewrite, and the weight it reads. */
interface Plan {
  index: number;
  node: OnnxNode;
  weight: string;
  transB: boolean;
  alpha: number;
  bias: string;
  /** the Add of a bias that the node takes over, by node index */
  biasAdd: number | null;
}

/** The nodes to rewrite; a bias Add is taken over only when the product it reads is not in `keep`. */
function planQuantization(files: OnnxFiles, keep: ReadonlySet<string>): Plan[] {
  const { graph } = files.model;
  const floatWeights = new Map(graph.initializers.filter((i) => i.dataType === ONNX_FLOAT).map((i) => [i.name, i]));
  const gemmAttrs = numericAttributes(files.bytes, new Set(['Gemm']));
  const plans: Plan[] = [];
  graph.nodes.forEach((node, index) => {
    if (node.domain !== '' && node.domain !== 'ai.onnx') return;
    const [a, b, c] = node.inputs;
    const w = floatWeights.get(b ?? '');
    if (a === undefined || a === '' || floatWeights.has(a) || w === undefined || w.dims.length !== 2 || node.outputs.length !== 1) return;
    if (node.opType === 'MatMul') {
      plans.push({ index, node, weight: w.name, transB: false, alpha: 1, bias: '', biasAdd: null });
    } else if (node.opType === 'Gemm') {
      const attrs = gemmAttrs.get(index) ?? {};
      if ((attrs.transA ?? 0) !== 0) return;
      const transB = (attrs.transB ?? 0) !== 0;
      const cols = w.dims[transB ? 0 : 1];
      // a bias the node can add: a 1-d weight of N values, at beta 1
      let bias = '';
      if (c !== undefined && c !== '') {
        const cw = floatWeights.get(c);
        const size = cw?.dims.reduce((x, y) => x * y, 1);
        if (cw === undefined || cw.dims.length !== 1 || size !== cols || (attrs.beta ?? 1) !== 1) return;
        bias = c;
      }
      plans.push({ index, node, weight: w.name, transB, alpha: attrs.alpha ?? 1, bias, biasAdd: null });
    }
  });

  // A MatMul's bias Add (exporters write nn.Linear on 3-d inputs as MatMul then Add) goes into
  // the quantized node, which adds it to its int32 result, when nothing else reads the product
  // and it is not a tensor a tap reads (`keep`).
  const readers = new Map<string, number[]>();
  graph.nodes.forEach((n, i) => n.inputs.forEach((t) => readers.set(t, [...(readers.get(t) ?? []), i])));
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  for (const p of plans) {
    if (p.bias !== '' || p.node.opType !== 'MatMul') continue;
    const product = p.node.outputs[0]!;
    const users = readers.get(product) ?? [];
    const add = users.length === 1 ? graph.nodes[users[0]!] : undefined;
    if (add === undefined || add.opType !== 'Add' || (add.domain !== '' && add.domain !== 'ai.onnx') || keep.has(product) || graphOutputs.has(product))
      continue;
    const other = add.inputs[0] === product ? add.inputs[1] : add.inputs[0];
    const bw = floatWeights.get(other ?? '');
    const cols = floatWeights.get(p.weight)?.dims[1];
    if (bw === undefined || add.inputs.length !== 2 || bw.dims.length !== 1 || bw.dims[0] !== cols) continue;
    p.bias = bw.name;
    p.biasAdd = users[0]!;
  }
  return plans;
}

/** The products a quantized node takes over with their bias Add: tensors of the fp32 graph that the int8 one does not have. */
function fusedProducts(plans: readonly Plan[]): string[] {
  return plans.filter((p) => p.biasAdd !== null).map((p) => p.node.outputs[0]!);
}

/**
 * Quantize `files` in memory (see the module's comment). Tensors in `keep` (what taps read) stay
 * in the graph. A model with nothing to quantize comes back unchanged, with no nodes.
 */
export function quantizeOnnx(files: OnnxFiles, keep: ReadonlySet<string> = new Set()): QuantizedOnnx {
  const { graph } = files.model;
  const plans = planQuantization(files, keep);
  if (plans.length === 0) return { files, nodes: [] };
  const names = new Set([...graph.initializers.map((i) => i.name), ...graph.nodes.flatMap((n) => [...n.inputs, ...n.outputs])]);
  const fresh = (base: string): string => {
    let name = base;
    for (let k = 1; names.has(name); k++) name = `${base}_${k}`;
    names.add(name);
    return name;
  };
  const data = readInitializers(files.bytes, new Set(plans.map((p) => p.weight)));
  const replace = new Map<number, Uint8Array[]>();
  const addInitializers: Uint8Array[] = [];
  const made = new Map<string, { q: string; scale: string }>();
  for (const p of plans) {
    const t = data.get(p.weight);
    if (t === undefined) throw new Error(`weight '${p.weight}' not found`);
    const key = `${p.weight}\n${p.transB}\n${p.alpha}`;
    let q8 = made.get(key);
    if (q8 === undefined) {
      const v = floats(t, files);
      const [d0, d1] = t.dims as [number, number];
      const [k, n] = p.transB ? [d1, d0] : [d0, d1];
      const { q, scales } = quantizeColumns(k, n, p.transB ? (r, c) => v[c * d1 + r]! : (r, c) => v[r * d1 + c]!, p.alpha);
      q8 = { q: fresh(`${p.weight}_int8`), scale: fresh(`${p.weight}_scale`) };
      addInitializers.push(encodeTensor({ name: q8.q, dims: [k, n], dataType: INT8, raw: new Uint8Array(q.buffer) }));
      addInitializers.push(encodeTensor({ name: q8.scale, dims: [n], dataType: ONNX_FLOAT, raw: new Uint8Array(scales.buffer) }));
      made.set(key, q8);
    }
    const node = encodeNode({
      name: p.node.name,
      opType: 'DynamicQuantizeMatMul',
      domain: MS_DOMAIN,
      inputs: [p.node.inputs[0]!, q8.q, q8.scale, '', p.bias],
      outputs: p.biasAdd === null ? p.node.outputs : (graph.nodes[p.biasAdd]?.outputs ?? []),
    });
    // with its bias Add, the node stands where the Add stood: after everything the Add reads
    if (p.biasAdd === null) replace.set(p.index, [node]);
    else {
      replace.set(p.index, []);
      replace.set(p.biasAdd, [node]);
    }
  }
  // a weight no other node reads goes: the int8 copy replaces it
  const rewritten = new Set(plans.flatMap((p) => (p.biasAdd === null ? [p.index] : [p.index, p.biasAdd])));
  const stillRead = new Set(graph.nodes.flatMap((n, i) => (rewritten.has(i) ? [] : n.inputs)));
  for (const p of plans) if (p.bias !== '') stillRead.add(p.bias);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const dropInitializers = new Set(plans.map((p) => p.weight).filter((w) => !stillRead.has(w) && !outputs.has(w)));
  const addOpsets = files.model.opsets.some((o) => o.domain === MS_DOMAIN) ? [] : [{ domain: MS_DOMAIN, version: 1 }];
  const bytes = editGraph(files.bytes, { replace, dropInitializers, addInitializers, addOpsets });
  return {
    files: { ...files, bytes, model: parseOnnxModel(bytes, files.source) },
    nodes: plans.map((p) => ({ name: p.node.name || p.node.outputs[0]!, was: p.node.opType, weight: p.weight })),
  };
}

/**
 * Where the int8 model of `files` is cached: `.layertap/` beside the model, named by the model's
 * content hash, the quantizer's version and the fused products that taps keep, so that a changed
 * model or quantizer makes a new file.
 */
export function quantizedCachePath(files: OnnxFiles, kept: readonly string[] = [], contentHash = onnxContentHash(files)): string {
  const stem = path.basename(files.source).replace(/\.onnx$/i, '');
  const key = createHash('sha256')
    .update(JSON.stringify([contentHash, `int8 v${QUANTIZER_VERSION}`, [...kept].sort()]))
    .digest('hex')
    .slice(0, 16);
  return path.join(path.dirname(files.source), '.layertap', `${stem}.int8-${key}.onnx`);
}

/**
 * The int8 model of `files`, with the tensors in `keep` (what taps read) in its graph: read from
 * its cache file when there is one, else quantized and written there (temp name, then rename, so
 * that threads and processes loading the same model at once never read half a file). A folder
 * that cannot be written to only costs the cache.
 */
export async function quantizedOnnx(files: OnnxFiles, keep: ReadonlySet<string> = new Set()): Promise<OnnxFiles> {
  // only the kept tensors that quantizing would remove make a different graph
  const kept = fusedProducts(planQuantization(files, new Set())).filter((t) => keep.has(t));
  const cache = quantizedCachePath(files, kept);
  try {
    const bytes = new Uint8Array(await fs.readFile(cache));
    return { ...files, bytes, model: parseOnnxModel(bytes, files.source) };
  } catch {
    // not cached yet, or unreadable: quantize again
  }
  const { files: quantized } = quantizeOnnx(files, new Set(kept));
  const temp = `${cache}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await fs.mkdir(path.dirname(cache), { recursive: true });
    await fs.writeFile(temp, quantized.bytes);
    await fs.rename(temp, cache);
  } catch {
    // a read-only model folder: the model is quantized in memory at every load
    await fs.rm(temp, { force: true }).catch(() => undefined);
  }
  return quantized;
}
