import { loadJobFile } from '../config/load.js';
import { resolveJob } from '../pipeline/plan.js';
import type { Registries } from '../pipeline/registries.js';
import type { JobConfig } from '../config/schema.js';
import type { LayertapClient } from './client.js';
import { redactUrl, settingsFromEnv, type QueueSettings } from './connection.js';
import { EmbeddedRedis, redisAnswers } from './embedded-redis.js';
import { FINAL_STATUSES, type RunSummary } from './types.js';
import type { LayertapWorker } from './worker.js';
import { DEFAULTS } from '../config/defaults.js';
import { EmbedPool } from '../workers/pool.js';
import { modelSpecOf } from '../workers/model-spec.js';
import { callbackLogger, silentLogger, type Logger } from '../types/logger.js';

/** Options for {@link runJob}. */
export interface RunOptions {
  /** @defaultValue from REDIS_URL / LAYERTAP_PREFIX */
  settings?: Partial<QueueSettings>;
  /** shard jobs the embedded worker processes at once. @defaultValue 2 */
  workers?: number;
  /** pool threads of the embedded worker. @defaultValue the number of cores */
  threads?: number;
  /** base for relative paths in the job. @defaultValue process.cwd() */
  cwd?: string;
  /** called with the live status while the run is in progress (about 4 times a second) */
  onProgress?: (s: RunSummary) => void;
  /**
   * where log records go: the Redis choice and the run's start (no `worker` field), and the
   * embedded worker's records (bound to `worker`, and to `runId`/`shard` for shard work).
   * @defaultValue `log` when given, else none
   */
  logger?: Logger;
  /** the records as plain text lines (their messages), when no `logger` is given */
  log?: (line: string) => void;
  /**
   * where the job's source kind, sink scheme, part format and model runtime are found (pool
   * threads import the runtime's module). @defaultValue the built-ins
   */
  registries?: Registries;
}

/**
 * Connect to Redis, or, when no REDIS_URL is set and nothing answers on 127.0.0.1:6379, start a
 * private redis-server. Returns the settings to use and a stop function.
 */
export async function connectRedis(
  partial: Partial<QueueSettings> = {},
  log: Logger = silentLogger,
): Promise<{ settings: QueueSettings; stop: () => Promise<void> }> {
  const env = settingsFromEnv();
  const explicit = partial.redisUrl ?? (process.env.REDIS_URL ? env.redisUrl : undefined);
  const settings: QueueSettings = {
    redisUrl: explicit ?? env.redisUrl,
    prefix: partial.prefix ?? env.prefix,
    allowEviction: partial.allowEviction ?? env.allowEviction ?? false,
  };
  if (await redisAnswers(settings.redisUrl, 1000)) {
    log.info({ redis: redactUrl(settings.redisUrl) }, `redis: ${redactUrl(settings.redisUrl)}`);
    return { settings, stop: async () => undefined };
  }
  if (explicit) {
    throw new Error(`Redis at ${redactUrl(explicit)} does not answer; start it or fix REDIS_URL`);
  }
  const embedded = await EmbeddedRedis.start();
  log.info(
    { redis: embedded.url, embedded: true },
    `redis: nothing answers on ${env.redisUrl}; started a private redis-server at ${embedded.url} (stopped on exit)`,
  );
  return { settings: { ...settings, redisUrl: embedded.url }, stop: () => embedded.stop() };
}

/** Resolve, enqueue and process a job with an embedded worker until its run is committed, failed or partial. */
export async function runJob(jobOrPath: JobConfig | string, opts: RunOptions = {}): Promise<RunSummary> {
  const lines = opts.log;
  const log = opts.logger ?? (lines ? callbackLogger((msg) => lines(msg)) : silentLogger);
  const config = typeof jobOrPath === 'string' ? await loadJobFile(jobOrPath) : jobOrPath;
  const registries = opts.registries ? { registries: opts.registries } : {};
  // The model threads start as the job is read and load its model once it is resolved, while
  // this thread loads BullMQ and sets up Redis, so that the first batch does not wait for them
  // (with spare cores that hides their start-up; on two it trades places with this thread's work).
  let pool: EmbedPool | null = new EmbedPool({
    backend: config.model.backend,
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    ...(opts.registries ? { runtimes: opts.registries.runtimes } : {}),
    onError: (err) => log.error({}, `layertap worker: pool: ${err.message}`),
  });
  let stop = async (): Promise<void> => undefined;
  let client: LayertapClient | null = null;
  let worker: LayertapWorker | null = null;
  let lease: NodeJS.Timeout | null = null;
  let owned: string | null = null;
  let warming: Promise<void> = Promise.resolve();
  try {
    // validate against the model and source before touching Redis: a bad job does no work
    const resolved = await resolveJob(config, { ...(opts.cwd ? { cwd: opts.cwd } : {}), ...registries });
    warming = pool.warmUp(modelSpecOf(resolved, opts.registries?.runtimes));
    if (resolved.model.precision === 'int8') {
      // the price of int8 on the first rows, before any work is queued: a run below model.minCosine does not start
      const { priceInt8 } = await import('../pipeline/precision.js');
      await priceInt8(resolved, { pool, ...registries, onFigure: (line, precision) => log.info({ precision }, line) });
    }
    // BullMQ and the shard pipeline (a quarter of a second of this thread's time) load while the threads start
    const [{ LayertapClient, newRunId }, { LayertapWorker }] = await Promise.all([import('./client.js'), import('./worker.js')]);
    const redis = await connectRedis(opts.settings, log);
    stop = redis.stop;
    const settings = redis.settings;
    client = new LayertapClient(settings, registries);
    // the run has queues of its own, so that this process works it alone: no other run's shards, no schedule ticks
    const runId = newRunId();
    const finished = new Wakeup();
    worker = new LayertapWorker({
      settings,
      ...registries,
      ...(opts.workers !== undefined ? { concurrency: opts.workers } : {}),
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
      logger: log,
      pool,
      owner: runId,
      // the run's status is read again as soon as it is final, not at the next poll
      onRun: () => finished.wake(),
    });
    pool = null;
    await Promise.all([client.waitUntilReady(), worker.start()]);
    // runs whose `layertap run` died are ended before this one starts
    await client.failAbandoned();
    const rec = await client.enqueue(resolved, { runId, owner: runId });
    log.info(
      { runId: rec.runId, totalRows: rec.totalRows, shards: rec.shards, output: rec.outputUri, deduplicated: rec.deduplicated ?? false },
      rec.deduplicated
        ? `run ${rec.runId}: an identical run is active; waiting for it -> ${rec.outputUri}`
        : `run ${rec.runId}: ${rec.totalRows} rows in ${rec.shards} shard(s) -> ${rec.outputUri}`,
    );
    if (rec.runId === runId) {
      const c = client;
      lease = setInterval(() => void c.holdRun(runId).catch(() => undefined), Math.floor(DEFAULTS.run.ownerTimeoutMs / 3));
      lease.unref();
      owned = runId;
    }
    const summary = await waitForRun(client, rec.runId, opts.onProgress, 250, (ms) => finished.sleep(ms));
    return resolved.precision ? { ...summary, precision: resolved.precision } : summary;
  } finally {
    if (lease) clearInterval(lease);
    // threads still loading the model are not stopped mid-load: a run whose rows were all carried
    // over can end before the warm-up is taken, and a thread terminated inside onnxruntime's
    // native load aborts the whole process
    await warming.catch(() => undefined);
    await pool?.close();
    await worker?.close();
    // an ended run's queues go with every job in them; one still going (an interrupted `run`) is ended by the next sweep
    if (owned && client) {
      const c = client;
      const rec = await c.registry.get(owned).catch(() => null);
      // one that could not be finalized keeps them: `layertap finalize` reads its shards' outcomes there
      if (rec && FINAL_STATUSES.includes(rec.status) && rec.unfinalized !== true) await c.dropRunQueues(owned).catch(() => undefined);
    }
    await client?.close();
    await stop();
  }
}

/** Sleeps that end early when something they wait for has happened. */
class Wakeup {
  private sleepers: Array<() => void> = [];

  /** Resolves after `ms`, or at the next wake(). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers = this.sleepers.filter((s) => s !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.push(done);
    });
  }

  /** Ends every sleep now. */
  wake(): void {
    for (const done of [...this.sleepers]) done();
  }
}

/**
 * Poll a run until it is committed, failed or partial. `sleep` waits between polls (an embedded
 * worker's caller may end it when the worker finalizes a run). @defaultValue a timer of `intervalMs`
 */
export async function waitForRun(
  client: LayertapClient,
  runId: string,
  onProgress?: (s: RunSummary) => void,
  intervalMs = 250,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<RunSummary> {
  for (;;) {
    const s = await client.status(runId);
    if (!s) throw new Error(`no run with id ${runId}`);
    onProgress?.(s);
    if (FINAL_STATUSES.includes(s.status)) return s;
    await sleep(intervalMs);
  }
}
