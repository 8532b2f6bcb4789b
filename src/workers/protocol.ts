import type { RowStage } from '../types/row-stage.js';
import type { ModelSpec, TapOutput } from '../models/types.js';

/**
 * Messages between the worker's main thread and a pool thread. Every ArrayBuffer here crosses
 * by transfer (Piscina.move), never by copy.
 */
export type BatchInput =
  /** encoded image files; decoded, resized and normalised in the thread */
  | { kind: 'images'; ids: string[]; files: Uint8Array[] }
  /** rows of a tensor source, contiguous: [rows, ...inputShape] */
  | { kind: 'tensor'; ids: string[]; data: Float32Array }
  /** rows of a tensor source, one buffer each ([...inputShape]); the thread lays them out as one batch */
  | { kind: 'rows'; ids: string[]; rows: Float32Array[] };

export interface BatchTask {
  model: ModelSpec;
  input: BatchInput;
}

/** A row of the batch that could not be embedded. */
export interface RowError {
  /** index of the row within the batch */
  index: number;
  /** where it failed: 'decode', 'input' (a tensor row with NaN or Inf) or 'features' (NaN or Inf features); 'read' happens before a batch */
  stage: RowStage;
  message: string;
}

/** What a thread answers: the batch's result, or that the model could not be loaded (no row was run). */
export type BatchOutcome = BatchResult | { modelLoadFailure: { uri: string; message: string } };

export interface BatchResult {
  /** indices (within the batch) of the rows that have features, in order */
  ok: number[];
  errors: RowError[];
  /** one entry per tap column name, rows = ok.length */
  taps: Record<string, TapOutput>;
  backend: string;
  layout: 'nhwc' | 'nchw';
  decodeMs: number;
  forwardMs: number;
  /**
   * A contiguous tensor batch's own buffer, handed back by transfer once the forward pass is
   * done, so that the main thread reads the next batch into it instead of allocating a new one.
   */
  input?: ArrayBuffer;
}
