import { availableParallelism } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { EmbedPool, threadsFor } from '../workers/pool.js';
import { MODEL_LOAD_FAILED } from '../workers/thread-errors.js';
import { bullConnection, redisOptions, type QueueSettings } from './connection.js';
import { RunRegistry } from './run-registry.js';
import { finalizeRun } from './run-processor.js';
import { processShard } from './shard-processor.js';
import { RUNS_QUEUE, SHARDS_QUEUE, type RunJobData, type ShardJobData, type ShardResult } from './types.js';

/** Options for {@link LayertapWorker}. */
export interface LayertapWorkerOptions {
  settings: QueueSettings;
  /** shard jobs processed at once by this process. @defaultValue 2 */
  concurrency?: number;
  /** pool threads. @defaultValue the number of cores (1 with tfjs-node) */
  threads?: number;
  /** where log lines go. @defaultValue stderr */
  log?: (line: string) => void;
  /** called after each batch (rows embedded, error rows) */
  onBatch?: (runId: string, rows: number, errorRows: number) => void;
}

/** Processes shard jobs and finalizes runs until closed. Any number may run on any hosts. */
export class LayertapWorker {
  private readonly redis: Redis;
  private readonly registry: RunRegistry;
  private shardWorker: Worker<ShardJobData, ShardResult> | null = null;
  private runWorker: Worker<RunJobData> | null = null;
  private readonly pools = new Map<number, EmbedPool>();
  private readonly log: (line: string) => void;

  constructor(private readonly opts: LayertapWorkerOptions) {
    if (opts.concurrency !== undefined && (!Number.isInteger(opts.concurrency) || opts.concurrency < 1)) {
      throw new Error(`options.concurrency must be a positive integer, got ${opts.concurrency}`);
    }
    if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || opts.threads < 1)) {
      throw new Error(`options.threads must be a positive integer, got ${opts.threads}`);
    }
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.redis = new Redis({ ...redisOptions(opts.settings.redisUrl), maxRetriesPerRequest: null });
    this.registry = new RunRegistry(this.redis, opts.settings.prefix);
  }

  /** One pool per thread count: tfjs-node jobs get a single-thread pool, the others share one. */
  private poolFor(job: ShardJobData): EmbedPool {
    const threads = threadsFor(job.job.model.backend, this.opts.threads ?? availableParallelism());
    let pool = this.pools.get(threads);
    if (!pool) {
      pool = new EmbedPool({ threads, backend: job.job.model.backend });
      this.pools.set(threads, pool);
      this.log(`layertap worker: pool of ${threads} thread(s)`);
    }
    return pool;
  }

  private async processShardJob(job: Job<ShardJobData, ShardResult>, _token?: string, signal?: AbortSignal): Promise<ShardResult> {
    const { runId, shard } = job.data;
    const rec = await this.registry.get(runId);
    if (rec?.status === 'queued') await this.registry.update(runId, { status: 'running' });
    try {
      const result = await processShard(job.data, {
        pool: this.poolFor(job.data),
        ...(signal ? { signal } : {}),
        onBatch: async (rows, errorRows) => {
          this.opts.onBatch?.(runId, rows, errorRows);
          await this.registry.addProgress(runId, rows, errorRows);
        },
      });
      this.log(`layertap worker: run ${runId} shard ${shard.index}: ${result.rows} rows, ${result.errorRows} errors, ${result.seconds.toFixed(2)} s (${result.backend})`);
      return result;
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      this.log(`layertap worker: run ${runId} shard ${shard.index} attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1} failed: ${message}`);
      // a model that cannot load will not load on the next attempt either
      if (message.includes(MODEL_LOAD_FAILED)) throw new UnrecoverableError(message);
      throw err;
    }
  }

  /** Connect and start taking jobs. */
  async start(): Promise<void> {
    const connection = bullConnection(this.opts.settings.redisUrl);
    const prefix = this.opts.settings.prefix;
    this.shardWorker = new Worker<ShardJobData, ShardResult>(SHARDS_QUEUE, (job, token, signal) => this.processShardJob(job, token, signal), {
      connection,
      prefix,
      concurrency: this.opts.concurrency ?? 2,
    });
    this.runWorker = new Worker<RunJobData>(
      RUNS_QUEUE,
      async (job) => {
        const res = await finalizeRun(job, this.registry);
        this.log(`layertap worker: run ${job.data.runId} ${res.status}: ${res.manifest}`);
        return res;
      },
      { connection, prefix, concurrency: 1 },
    );
    for (const w of [this.shardWorker, this.runWorker]) {
      w.on('error', (err) => this.log(`layertap worker: ${err.message}`));
    }
    await Promise.all([this.shardWorker.waitUntilReady(), this.runWorker.waitUntilReady()]);
  }

  /** Stop taking jobs, let active shards finish, then release threads and connections. */
  async close(): Promise<void> {
    await Promise.allSettled([this.shardWorker?.close(), this.runWorker?.close()]);
    await Promise.allSettled([...this.pools.values()].map((p) => p.close()));
    this.redis.disconnect();
  }
}
