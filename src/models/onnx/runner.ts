import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { ResolvedTap } from '../../config/resolved.js';
import { fromFloat16Array } from '../../types/float16.js';
import { asFloat32, checkInputs, checkRowShape, sliceRows } from '../model-inputs.js';
import { onnxInputs } from './describe.js';
import { readOnnxFiles } from './files.js';
import { withGraphOutputs } from './graph.js';
import { OnnxTapIndex } from './module-paths.js';
import { quantizedOnnx } from './quantize.js';
import { createSession, loadOrt, ortFeeds, type Ort } from './session.js';
import { encodeTap, tapValues } from '../reductions.js';
import type { ModelInputInfo, ModelInputs, ModelRunner, ModelSpec, NamedTensor, TapOutput } from '../types.js';

/** Layout of an ONNX runner's activations: PyTorch exports are NCHW, as is the Conv op. */
export const ONNX_LAYOUT = 'nchw';

interface Activation {
  values: Float32Array;
  dims: number[];
}

/** An output tensor's values as float32 (taps are float features whatever the tensor's type). */
function outputFloat32(t: Tensor, name: string): Float32Array {
  const data = t.data;
  if (data instanceof Float32Array) return data;
  if (t.type === 'float16' && data instanceof Uint16Array) return fromFloat16Array(data);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float32Array.from(data, (v) => Number(v));
  if (ArrayBuffer.isView(data) && !(data instanceof DataView)) return Float32Array.from(data as ArrayLike<number>);
  throw new Error(`tensor '${name}' is of type ${t.type}, which cannot be a feature`);
}

class OnnxRunner implements ModelRunner {
  readonly backend = 'onnx';
  readonly layout = ONNX_LAYOUT;
  private disposed = false;

  constructor(
    private readonly ort: Ort,
    private readonly session: InferenceSession,
    /** names the model in errors */
    private readonly source: string,
    readonly inputs: readonly ModelInputInfo[],
    /** the batch size the graph was exported with, when it is fixed */
    private readonly fixedBatch: number | null,
    private readonly taps: ResolvedTap[],
    /** per tap, the tensor it reads */
    private readonly tensors: string[],
    /** rows per session.run of a larger batch ({@link imageSliceRows}); null: the batch in one run */
    private readonly sliceRows: number | null,
  ) {}

  /** One session.run fetching every tapped tensor. */
  private async forward(inputs: ModelInputs, fetch: string[]): Promise<Map<string, Activation>> {
    const result = await this.session.run(ortFeeds(this.ort, inputs), fetch);
    const out = new Map<string, Activation>();
    for (const name of fetch) {
      const t = result[name];
      if (t === undefined) throw new Error(`onnxruntime returned no tensor '${name}'`);
      out.set(name, { values: outputFloat32(t, name), dims: [...t.dims] });
    }
    return out;
  }

  /**
   * The rows in slices of `slice` rows, one session.run each, the results put back together. A
   * graph exported with a fixed batch size runs in slices of that size (`pad`: the last one
   * filled up with zeros, whose rows are dropped); an image model's large batch in smaller
   * slices ({@link imageSliceRows}), the last one shorter.
   */
  private async forwardSlices(inputs: ModelInputs, rows: number, fetch: string[], slice: number, pad: boolean): Promise<Map<string, Activation>> {
    const parts: Map<string, Activation>[] = [];
    for (let start = 0; start < rows; start += slice) {
      const take = Math.min(slice, rows - start);
      const fed = pad ? slice : take;
      const chunk: ModelInputs = {};
      for (const [name, t] of Object.entries(inputs)) chunk[name] = sliceRows(t, start, take, fed);
      const got = await this.forward(chunk, fetch);
      // keep only the real rows of a padded slice
      for (const a of got.values()) {
        if (a.dims[0] !== fed) throw new Error(`a tapped tensor has shape [${a.dims.join(', ')}], which has no batch axis`);
        a.values = a.values.subarray(0, (a.values.length / fed) * take);
        a.dims[0] = take;
      }
      parts.push(got);
    }
    const out = new Map<string, Activation>();
    for (const name of fetch) {
      const pieces = parts.map((p) => p.get(name) as Activation);
      const values = new Float32Array(pieces.reduce((n, p) => n + p.values.length, 0));
      let at = 0;
      for (const p of pieces) {
        values.set(p.values, at);
        at += p.values.length;
      }
      out.set(name, { values, dims: [rows, ...(pieces[0]?.dims.slice(1) ?? [])] });
    }
    return out;
  }

  async run(inputs: ModelInputs): Promise<Record<string, TapOutput>> {
    if (this.disposed) throw new Error('run() on a disposed model runner');
    const rows = checkInputs(inputs, this.inputs, this.source);
    // one pass fetches every tapped tensor; a tap on a model input reads the fed values
    const fed = new Map(this.inputs.map((i) => [i.name, inputs[i.name] as NamedTensor]));
    const fetch = [...new Set(this.tensors.filter((t) => !fed.has(t)))];
    let activations = new Map<string, Activation>();
    if (fetch.length > 0) {
      if (this.fixedBatch !== null && this.fixedBatch !== rows) activations = await this.forwardSlices(inputs, rows, fetch, this.fixedBatch, true);
      else if (this.sliceRows !== null && rows > this.sliceRows) activations = await this.forwardSlices(inputs, rows, fetch, this.sliceRows, false);
      else activations = await this.forward(inputs, fetch);
    }
    for (const t of this.tensors) {
      const given = fed.get(t);
      if (given !== undefined && !activations.has(t)) activations.set(t, { values: asFloat32(given), dims: given.dims });
    }
    const fedData = new Set<ArrayBufferView>([...fed.values()].map((t) => t.data));
    const out: Record<string, TapOutput> = {};
    this.taps.forEach((tap, i) => {
      const a = activations.get(this.tensors[i] ?? '');
      if (a === undefined) throw new Error(`tap '${tap.as}' produced no tensor`);
      const features = tapValues(a.values, a.dims, tap, rows, ONNX_LAYOUT);
      // a fed input is the caller's buffer: hand back a copy, never a view of it
      const values = fedData.has(features.values) ? features.values.slice() : features.values;
      out[tap.as] = encodeTap(values, features.shape, tap);
    });
    return out;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.session.release();
  }
}

/**
 * Load an ONNX model (in the calling thread) with every tap added as an extra graph output, so
 * that one session.run per batch yields them all. Taps name nodes, tensors or PyTorch module paths.
 */
export async function loadOnnxRunner(spec: ModelSpec): Promise<ModelRunner> {
  if (spec.taps.length === 0) throw new Error(`model ${spec.uri}: no taps; name at least one layer to tap`);
  const files = await readOnnxFiles(spec.uri);
  const { graph } = files.model;
  const inputs = onnxInputs(files.model, files.source);
  const [first] = inputs;
  if (first !== undefined && inputs.length === 1 && first.dtype === 'float32') checkRowShape(files.source, first.dims, spec.inputShape);
  // fail on a misspelt layer before the runtime spends time on the weights
  const index = new OnnxTapIndex(graph, files.source);
  const tensors = spec.taps.map((tap) => index.resolve(tap.layer, tap.at).tensor);

  const declared = new Map([...graph.valueInfo, ...graph.outputs].map((v) => [v.name, v.elemType]));
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const extra = [...new Set(tensors)].filter((t) => !outputs.has(t) && !index.isGraphInput(t)).map((name) => ({ name, elemType: declared.get(name) ?? null }));
  // int8: the quantized graph keeps every tensor a tap reads, under the same name
  const run = spec.precision === 'int8' ? await quantizedOnnx(files, new Set(tensors)) : files;
  const ort = await loadOrt();
  const session = await createSession(ort, run, withGraphOutputs(run.bytes, extra), {
    ...(spec.intraOpThreads !== undefined ? { intraOpThreads: spec.intraOpThreads } : {}),
    // no memory pattern (see OnnxSessionOptions.memPattern): images and tensors gain nothing from
    // it after their second run, and text batches change shape from batch to batch, so a pattern
    // recorded for one shape rarely serves another (768 rows of the text bench, `run` time, 5
    // pairs: int8 4.2-5.4 s instead of 4.6-6.1, fp32 the same)
    memPattern: false,
  });
  const batch = inputs.map((i) => i.dims?.[0]).find((d) => typeof d === 'number');
  const slice = batch === undefined && spec.precision !== 'int8' ? imageSliceRows(inputs, spec.inputShape) : null;
  return new OnnxRunner(ort, session, files.source, inputs, batch ?? null, spec.taps, tensors, slice);
}

/**
 * Values of an image model's input per session.run: 8 RGB images of 224 x 224. A convolutional
 * network's activations grow with the batch (a batch of 32 of MobileNetV2 touches about 400 MB,
 * paid in page faults on each thread's first batch and in cache misses on every one), while its
 * cost per image does not fall past a few images: in slices of 8, a row costs 4.8 ms instead of
 * 5.2 (one thread), the first batch 0.2 s instead of 0.9, and the values are the same to the bit
 * (onnxruntime computes each image of a convolution apart). See docs/performance.md.
 */
export const IMAGE_SLICE_VALUES = 8 * 3 * 224 * 224;

/**
 * Rows per session.run for a model with one float32 input of rank 4 or more (images, NCHW or
 * NHWC) and a free batch axis: as many rows as fit in {@link IMAGE_SLICE_VALUES}, at least one.
 * null for other models (text, tensor rows): their batch runs whole. Not for int8, whose
 * activations are quantized over the whole batch.
 */
export function imageSliceRows(inputs: readonly ModelInputInfo[], rowShape: readonly number[]): number | null {
  const [only] = inputs;
  if (only === undefined || inputs.length !== 1 || only.dtype !== 'float32' || (only.dims?.length ?? 0) < 4) return null;
  const perRow = rowShape.reduce((a, b) => a * b, 1);
  if (!(perRow > 0)) return null;
  return Math.max(1, Math.floor(IMAGE_SLICE_VALUES / perRow));
}
