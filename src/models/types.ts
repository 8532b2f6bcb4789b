import type { ResolvedPreprocess, ResolvedTap } from '../config/resolved.js';
import type { BackendName } from '../config/schema.js';
import type { TapOutput } from '../types/features.js';

export type { TapOutput };

/** One layer (LayersModel) or node (GraphModel / ONNX), as `layertap layers` lists it. */
export interface LayerInfo {
  name: string;
  /** Keras class name (LayersModel) or op (GraphModel/ONNX) */
  className: string;
  /** per-model output shape with null for the batch axis, when known */
  outputShape: (number | null)[] | (number | null)[][] | null;
  /** number of weights owned by the layer */
  params: number;
  /** names of the layers feeding this one */
  inputs: string[];
  /** output tensor names (ONNX) */
  outputs?: string[];
  /** the PyTorch module path an exported node belongs to ('' for the root module), null when its name has none (ONNX) */
  module?: string | null;
}

/** What can be learned about a model without running it. */
export interface ModelDescription {
  /** 'tfjs-layers' | 'tfjs-graph' | 'onnx' */
  format: string;
  /** the model's single input: shape with null batch, e.g. [null, 224, 224, 3] */
  inputShape: (number | null)[];
  inputLayout: 'nhwc' | 'nchw';
  /** layer/node names a tap may name */
  layerNames: string[];
  /** sha256 (hex) of topology + weight bytes */
  contentHash: string;
  /**
   * Throws when a tap on a listed name cannot be placed (e.g. a module that returns several
   * tensors, a constant), so that a job fails before any work. Absent when every listed name can be tapped.
   */
  checkTap?(layer: string, at: 'input' | 'output'): void;
}

/** A loaded model that runs a batch and returns every tap from ONE forward pass. */
export interface ModelRunner {
  /** backend actually in use, e.g. 'wasm', 'cpu', 'tensorflow', 'onnx' */
  readonly backend: string;
  /** native layout of 4-d activations: 'nhwc' (TF.js) or 'nchw' (ONNX) */
  readonly layout: 'nhwc' | 'nchw';
  /** run `rows` inputs laid out as [rows, ...inputShape] */
  run(input: Float32Array, rows: number): Promise<Record<string, TapOutput>>;
  dispose(): Promise<void>;
}

/** What a thread needs to load and run a model. */
export interface ModelSpec {
  uri: string;
  backend: BackendName;
  taps: ResolvedTap[];
  inputShape: number[];
  fingerprint: string;
  preprocess: ResolvedPreprocess | null;
  /** ONNX: threads one forward pass may use. @defaultValue cores / pool threads, at least 1 */
  intraOpThreads?: number;
}
