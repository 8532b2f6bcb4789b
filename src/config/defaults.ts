/**
 * Every default layertap applies, in one table: a job file's fields (the schema applies them), a
 * worker's options and its thread pool's, a run's queue settings, `plan`'s, and the servers'.
 * Each is documented here, where it is set; the options that take one name it as their
 * `@defaultValue`. Defaults that follow from the host or from another value (pool threads: the
 * cores; the stalled check: a part of the lock) are computed where they are used, from the
 * entries here.
 */
export const DEFAULTS = Object.freeze({
  /** a job file's fields (config/schema.ts) */
  job: Object.freeze({
    /** rows per forward pass */
    batchSize: 32,
    /** rows per shard job and per output part file */
    shardSize: 1024,
    /** attempts per shard before it counts as failed */
    attempts: 3,
    /** a shard that fails every attempt fails the run (`partial` keeps the others) */
    onShardFailure: 'fail',
    /** .onnx files on onnx; TF.js models on tensorflow if it loads, else wasm, else cpu */
    backend: 'auto',
    /** the part format: Arrow IPC files */
    format: 'arrow',
    /** a run embeds every row (scheduled runs are incremental) */
    incremental: false,
    /** images: resize the shorter side and centre-crop */
    fit: 'cover',
    /** text: tokens per row when neither the job, tokenizer_config.json nor the tokenizer says */
    maxLength: 512,
    /** JSONL: longest line read as a row; a longer one is an error row (64 MiB) */
    maxLineBytes: 64 * 1024 * 1024,
    /** images and image-path columns: largest file or object read for one row (256 MiB) */
    maxRowBytes: 256 * 1024 * 1024,
    /** ONNX models run as they are (fp32); `int8` quantizes their weight products at load */
    precision: 'fp32',
    /** int8: the first rows of a run, also run at fp32 to measure what quantization changed */
    precisionSample: 256,
    /** a tap reads a layer's output, whole (no reduce, no normalize), as float32 */
    tap: Object.freeze({ at: 'output', reduce: 'none', normalize: 'none', dtype: 'float32' }),
  } as const),
  /** a worker's options (queue/worker-options.ts) */
  worker: Object.freeze({
    /** shard jobs one process works at once (`worker --concurrency`, `run --workers`) */
    concurrency: 2,
    /**
     * how long a job's lock lives without renewal: a dead worker's shard is back in the queue
     * within 1.5 x this (docs/reliability.md)
     */
    lockDurationMs: 30_000,
    /** the stalled check interval is this part of the lock duration */
    stalledFraction: 0.25,
    /** times one shard may be recovered from a dead or frozen worker before it counts as failed */
    maxStalledCount: 5,
    /** on close, how long active shards may run on before they are handed back to the queue */
    graceMs: 25_000,
    /** how long shards and finalizing wait out storage that does not answer, without spending attempts */
    storageOutageMs: 600_000,
    /** how often a worker looks for runs whose enqueuer died while planning */
    planningSweepMs: 30_000,
    /** text: rows sorted by length within windows of a few batches, so that batches pad little */
    groupByLength: true,
  } as const),
  /** a worker's thread pool (workers/pool.ts) */
  pool: Object.freeze({
    /** longest a batch may take, from submission, before its thread is stopped (5 minutes; 0: no limit) */
    batchTimeoutMs: 300_000,
  } as const),
  /** a run in the queue (queue/client.ts) */
  run: Object.freeze({
    /**
     * shard jobs that exist at once per run: a worker starting shard i adds shard i + window, so
     * a run of any size keeps about this many in Redis (~0.7 KB each) while 256 busy workers never
     * run dry
     */
    window: 256,
    /**
     * how long a `layertap run` process may go without renewing the lease of the run it works
     * alone (it renews it every third of this); a run whose lease ran out is ended `failed` by
     * the next worker, `run`, `status` or `cancel` that looks
     */
    ownerTimeoutMs: 30_000,
  } as const),
  /** `layertap plan` */
  plan: Object.freeze({
    /** the worker counts a run's duration is estimated for */
    workerCounts: Object.freeze([1, 2, 4, 8, 16, 32, 64]),
  } as const),
  /** the servers of ops/ */
  ops: Object.freeze({
    /** `layertap dashboard`'s port */
    dashboardPort: 3000,
    /** a worker's metrics endpoint listens on this host only */
    metricsHost: '127.0.0.1',
  } as const),
});
