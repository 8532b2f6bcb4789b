import { availableParallelism } from 'node:os';
import { isMainThread, workerData } from 'node:worker_threads';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { OnnxFiles } from './files.js';
import type { ModelInputs, NamedTensor, PoolThreadInfo } from '../types.js';

/** The onnxruntime-node module, imported lazily so that describing a model never loads the native runtime. */
export type Ort = typeof import('onnxruntime-node');

// a memoized import: it holds the module and nothing else; a failed import is not kept
let loading: Promise<Ort> | undefined;

/** Import onnxruntime-node once per thread. */
export function loadOrt(): Promise<Ort> {
  loading ??= import('onnxruntime-node').catch((err: unknown) => {
    loading = undefined;
    throw new Error(`ONNX models need onnxruntime-node, which failed to load: ${(err as Error).message}`);
  });
  return loading;
}

function poolThreads(): number {
  if (isMainThread) return 1;
  const data = workerData as Partial<PoolThreadInfo> | null | undefined;
  const n = typeof data === 'object' && data !== null ? data.layertapPoolThreads : undefined;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : 1;
}

/** Intra-op threads for one session: the cores shared among the pool's threads (at least 1). */
export function defaultIntraOpThreads(cores = availableParallelism(), threads = poolThreads()): number {
  return Math.max(1, Math.floor(cores / threads));
}

/** Options for {@link createSession}. */
export interface OnnxSessionOptions {
  /** threads one forward pass may use. @defaultValue cores / pool threads, at least 1 */
  intraOpThreads?: number;
  /**
   * onnxruntime's memory pattern: the first run at a shape records where each tensor goes, the
   * second allocates one block for all of them. For MobileNetV2 at batch 32 that second
   * allocation costs a run's worth of page faults (0.2 s of CPU per session, each pool thread
   * holding one) and later runs are no faster without it; the arena still keeps the memory from
   * run to run. Text batches differ in shape (their longest row), and each new shape is a new
   * pattern to record and allocate. Model runners turn it off. @defaultValue true
   */
  memPattern?: boolean;
}

/** An inference session on the CPU for (possibly edited) model bytes, with the model's external data in memory. */
export async function createSession(ort: Ort, files: OnnxFiles, bytes: Uint8Array, opts: OnnxSessionOptions = {}): Promise<InferenceSession> {
  const intra = opts.intraOpThreads ?? defaultIntraOpThreads();
  if (!Number.isInteger(intra) || intra < 1) throw new Error(`intraOpThreads must be a positive integer, got ${intra}`);
  try {
    return await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      intraOpNumThreads: intra,
      // one batch is one run; parallelism comes from the pool's threads and the intra-op threads
      interOpNumThreads: 1,
      executionMode: 'sequential',
      enableMemPattern: opts.memPattern ?? true,
      graphOptimizationLevel: 'all',
      // the model is loaded from memory, so its external data files are handed over by location
      ...(files.external.length > 0 ? { externalData: files.external.map((e) => ({ path: e.location, data: e.data })) } : {}),
      logSeverityLevel: 3,
    });
  } catch (err) {
    throw new Error(`onnxruntime could not load ${files.source}: ${(err as Error).message}`);
  }
}

/** A named input as an onnxruntime tensor over the same buffer (no copy). */
export function ortTensor(ort: Ort, t: NamedTensor): Tensor {
  switch (t.dtype) {
    case 'float32':
      return new ort.Tensor('float32', t.data, t.dims);
    case 'int32':
      return new ort.Tensor('int32', t.data, t.dims);
    case 'int64':
      return new ort.Tensor('int64', t.data, t.dims);
  }
}

/** Every named input as an onnxruntime tensor, for session.run. */
export function ortFeeds(ort: Ort, inputs: ModelInputs): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name, ortTensor(ort, t)]));
}
