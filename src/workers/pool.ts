import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { BackendName } from '../config/schema.js';
import type { BatchResult, BatchTask } from './protocol.js';
import { transferList } from './transfer.js';

/** Options for {@link EmbedPool}. */
export interface EmbedPoolOptions {
  /** threads, each holding its own copy of the model. @defaultValue the number of cores */
  threads?: number;
  /** backend the jobs ask for; tfjs-node runs one thread per process (it uses every core itself). @defaultValue 'auto' */
  backend?: BackendName;
}

/**
 * The compiled thread entry. Running from TypeScript sources (tests), the compiled copy in
 * dist/ is used: worker threads do not go through the test runner's transform.
 */
export function threadEntry(): string {
  const here = fileURLToPath(new URL('./thread.js', import.meta.url));
  if (existsSync(here)) return here;
  const built = fileURLToPath(new URL('../../dist/workers/thread.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new Error(`worker thread entry not found at ${here} or ${built}; run 'npm run build'`);
}

/** True when @tensorflow/tfjs-node is installed (it may still fail to load). */
export function tfjsNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

/** Thread count for a backend: tfjs-node misbehaves with several threads in one process. */
export function threadsFor(backend: BackendName, requested?: number): number {
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1)) {
    throw new Error(`options.threads must be a positive integer, got ${requested}`);
  }
  if (backend === 'tensorflow' || (backend === 'auto' && tfjsNodeInstalled())) return 1;
  return requested ?? availableParallelism();
}

/** A Piscina pool of threads that decode inputs and run the model with taps. */
export class EmbedPool {
  private readonly piscina: Piscina;
  readonly threads: number;

  constructor(opts: EmbedPoolOptions = {}) {
    this.threads = threadsFor(opts.backend ?? 'auto', opts.threads);
    this.piscina = new Piscina({
      filename: threadEntry(),
      minThreads: this.threads,
      maxThreads: this.threads,
      // threads hold a loaded model; keep them for the life of the worker
      idleTimeout: Number.POSITIVE_INFINITY,
    });
  }

  /** Run one batch; the input buffers are transferred (detached here), features come back by transfer. */
  async run(task: BatchTask, signal?: AbortSignal): Promise<BatchResult> {
    const views = task.input.kind === 'images' ? task.input.files : [task.input.data];
    return (await this.piscina.run(task, { transferList: transferList(views), ...(signal ? { signal } : {}) })) as BatchResult;
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
    await this.piscina.close({ force: false });
  }
}
