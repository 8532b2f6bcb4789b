import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { threadExecArgv } from './exec-argv.js';
import { Piscina } from 'piscina';
import { DEFAULTS } from '../config/defaults.js';
import { defaultRuntimes, threadLimit, type RuntimeRegistry } from '../models/registry.js';
import type { ModelSpec, PoolThreadInfo } from '../models/types.js';
import { ownModule } from '../types/own-module.js';
import type { BatchRunner } from './batch-runner.js';
import type { BatchOutcome, BatchResult, BatchTask } from './protocol.js';
import { ModelLoadError } from '../types/errors.js';
import { transferList } from './transfer.js';

/** Options for {@link EmbedPool}. */
export interface EmbedPoolOptions {
  /** threads, each holding its own copy of the model. @defaultValue the number of cores */
  threads?: number;
  /** backend the jobs ask for; tfjs-node runs one thread per process (it uses every core itself). @defaultValue 'auto' */
  backend?: string;
  /**
   * longest a batch may take, counted from when it is submitted (so including a wait for a free
   * thread and the first model load); past it the thread is stopped, replaced, and the batch
   * fails. 0 turns the limit off. @defaultValue 300000 (5 minutes)
   */
  batchTimeoutMs?: number;
  /**
   * module the threads run: layertap's own thread entry unless given. A replacement must
   * default-export the same batch function (e.g. a wrapper that adds tracing, or injects faults in tests).
   * @defaultValue {@link threadEntry}()
   */
  filename?: string;
  /** errors of the pool itself (e.g. a thread that died between batches). @defaultValue written to stderr */
  onError?: (err: Error) => void;
  /** the runtimes whose thread limits apply to `backend` (tfjs-node's one thread). @defaultValue the built-ins */
  runtimes?: RuntimeRegistry;
}

/**
 * The compiled thread entry. Running from TypeScript sources (tests), the compiled copy in
 * dist/ is used: worker threads do not go through the test runner's transform.
 */
export function threadEntry(): string {
  const entry = fileURLToPath(ownModule('workers/thread.js'));
  if (!existsSync(entry)) throw new Error(`worker thread entry not found at ${entry} nor in dist/; run 'npm run build'`);
  return entry;
}

/**
 * Thread count for a backend: at most what the runtimes allow for it (tfjs-node's 'tensorflow'
 * misbehaves with several threads in one process), else `requested`, else the cores.
 */
export function threadsFor(backend: string, requested?: number, runtimes: RuntimeRegistry = defaultRuntimes()): number {
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1)) {
    throw new Error(`options.threads must be a positive integer, got ${requested}`);
  }
  const wanted = requested ?? availableParallelism();
  const limit = threadLimit(backend, runtimes);
  return limit === undefined ? wanted : Math.min(limit, wanted);
}

/** A Piscina pool of threads that decode inputs and run the model with taps. */
export class EmbedPool implements BatchRunner {
  private readonly piscina: Piscina;
  /** tensor batch buffers the threads handed back, newest last, for the next batches' reads */
  private readonly spare: ArrayBuffer[] = [];
  readonly threads: number;
  readonly batchTimeoutMs: number;
  /** threads Piscina removed so far */
  private destroyed = 0;
  /** threads of this process that exited so far, and the last one's exit code */
  private exits = 0;
  private lastExitCode = 0;
  /**
   * sharp loaded in this (main) thread before any pool thread decodes an image: when only worker
   * threads hold it, glibc unloads libvips as one of them exits and the others crash (lovell/sharp#2263)
   */
  private imageCodec: Promise<unknown> | null = null;

  constructor(opts: EmbedPoolOptions = {}) {
    this.threads = threadsFor(opts.backend ?? 'auto', opts.threads, opts.runtimes);
    const timeout = opts.batchTimeoutMs ?? DEFAULTS.pool.batchTimeoutMs;
    if (!Number.isInteger(timeout) || timeout < 0) {
      throw new Error(`options.batchTimeoutMs must be a non-negative integer (0 = no limit), got ${timeout}`);
    }
    this.batchTimeoutMs = timeout;
    // before Piscina starts its first threads, so that their exits are seen too
    process.on('worker', this.onThread);
    this.piscina = new Piscina({
      filename: opts.filename ?? threadEntry(),
      execArgv: threadExecArgv(),
      minThreads: this.threads,
      maxThreads: this.threads,
      // threads hold a loaded model; keep them for the life of the worker
      idleTimeout: Number.POSITIVE_INFINITY,
      // runtimes with their own thread pool (onnxruntime) share the cores among the pool's threads
      workerData: { layertapPoolThreads: this.threads } satisfies PoolThreadInfo,
    });
    // Piscina emits 'error' for a thread that dies with no task on it; unhandled, that would end the process
    const onError = opts.onError ?? ((err: Error) => process.stderr.write(`layertap pool: ${err.message}\n`));
    this.piscina.on('error', (err: unknown) => onError(err instanceof Error ? err : new Error(String(err))));
    // a thread that dies fails its batch with Piscina's bare error: the pool keeps the facts
    // itself, that a thread was removed and how the last one exited (both are known before the
    // batch's failure arrives)
    this.piscina.on('workerDestroy', () => this.destroyed++);
  }

  /** Threads of this process as they start: how they exit, for the message of a batch whose thread died. */
  private readonly onThread = (worker: Worker): void => {
    worker.once('exit', (code) => {
      this.exits++;
      this.lastExitCode = code;
    });
  };

  /**
   * Run one batch; the input buffers are transferred (detached here), features come back by
   * transfer. A thread that dies or overruns `batchTimeoutMs` fails only this batch; the pool
   * starts a new thread in its place.
   */
  async run(task: BatchTask, signal?: AbortSignal): Promise<BatchResult> {
    if (task.input.kind === 'images') await (this.imageCodec ??= import('../preprocess/image-decode.js'));
    const input = task.input;
    // text crosses as strings, which are copied: there is no buffer to move
    const views = input.kind === 'images' ? input.files : input.kind === 'rows' ? input.rows : input.kind === 'text' ? [] : [input.data];
    const timeout = this.batchTimeoutMs > 0 ? AbortSignal.timeout(this.batchTimeoutMs) : null;
    const signals = [signal, timeout].filter((s): s is AbortSignal => s !== undefined && s !== null);
    const combined = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    const destroyedBefore = this.destroyed;
    const exitsBefore = this.exits;
    try {
      const outcome = (await this.piscina.run(task, { transferList: transferList(views), ...(combined ? { signal: combined } : {}) })) as BatchOutcome;
      if ('modelLoadFailure' in outcome) throw new ModelLoadError(outcome.modelLoadFailure.uri, outcome.modelLoadFailure.message);
      const result = outcome;
      if (result.input) {
        this.keepSpare(result.input);
        delete result.input;
      }
      return result;
    } catch (err) {
      const rows = task.input.ids.length;
      if (timeout?.aborted && !signal?.aborted) {
        throw new Error(`batch of ${rows} row(s) (${describeIds(task.input.ids)}) took longer than ${this.batchTimeoutMs} ms; its thread was stopped`, {
          cause: err,
        });
      }
      if (err instanceof ModelLoadError || this.destroyed === destroyedBefore) throw err;
      const code = this.exits > exitsBefore ? this.lastExitCode : undefined;
      throw new Error(
        `a pool thread died${code === undefined ? '' : ` (exit code ${code})`} while running a batch of ${rows} row(s) (${describeIds(task.input.ids)}); the pool replaces it`,
        { cause: err },
      );
    }
  }

  /**
   * Loads `model` in the threads ahead of the first batch (one empty batch per thread), so that
   * a job's first batches do not wait for it. Resolves when they are done; a model that fails
   * to load is reported by the first real batch, which loads it again.
   */
  async warmUp(model: ModelSpec): Promise<void> {
    // a text model's empty batch loads its tokenizer too
    const empty = (): BatchTask => ({
      model,
      input: model.text ? { kind: 'text', ids: [], texts: [] } : { kind: 'tensor', ids: [], data: new Float32Array(0) },
    });
    // an image model's decoder (sharp: libvips takes a few hundred ms to load) loads here too,
    // not in the first batches: in this thread while the threads load the model, then, once
    // both are done, in the threads by an empty image batch (this thread first: see imageCodec)
    const codec = model.preprocess ? (this.imageCodec ??= import('../preprocess/image-decode.js')) : null;
    await Promise.allSettled(
      Array.from({ length: this.threads }, async () => {
        const loaded = (await this.piscina.run(empty())) as BatchOutcome;
        // a model that failed to load is not loaded a second time here (the first batch says why)
        if (codec && !('modelLoadFailure' in loaded)) {
          await codec;
          await this.piscina.run({ model, input: { kind: 'images', ids: [], files: [] } } satisfies BatchTask);
        }
      }),
    );
  }

  /**
   * A buffer of `bytes` bytes for reading a tensor batch into: one a thread handed back after a
   * batch of the same size (its old contents are to be overwritten), else a new one. Reusing
   * them spares a fresh allocation per batch and the garbage collections that much external
   * memory churn brings on.
   */
  takeBuffer(bytes: number): ArrayBuffer {
    for (let i = this.spare.length - 1; i >= 0; i--) {
      if (this.spare[i]!.byteLength === bytes) return this.spare.splice(i, 1)[0]!;
    }
    return new ArrayBuffer(bytes);
  }

  /** Buffers kept for reuse: enough for the batches in flight, and no more. */
  get spareBuffers(): number {
    return this.spare.length;
  }

  private keepSpare(buffer: ArrayBuffer): void {
    if (buffer.byteLength === 0) return;
    this.spare.push(buffer);
    // batches in flight are at most 2 per thread; beyond that a buffer would only sit idle
    if (this.spare.length > this.threads * 2 + 1) this.spare.shift();
  }

  /** Batches waiting for a thread. */
  get queued(): number {
    return this.piscina.queueSize;
  }

  /** Fraction of thread time spent running tasks since start (0-1). */
  get utilization(): number {
    return this.piscina.utilization;
  }

  async close(): Promise<void> {
    process.off('worker', this.onThread);
    this.spare.length = 0;
    await this.piscina.close({ force: false });
  }
}

/** 'ids 40..47' style summary of a batch's ids for messages. */
function describeIds(ids: string[]): string {
  if (ids.length === 0) return 'no ids';
  if (ids.length === 1) return `id ${ids[0]}`;
  return `ids ${ids[0]}..${ids[ids.length - 1]}`;
}
