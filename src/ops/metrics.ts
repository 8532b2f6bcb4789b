import { createServer, type Server } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { bullConnection, type QueueSettings } from '../queue/connection.js';
import { SCHEDULES_QUEUE } from '../queue/schedules.js';
import { RUNS_QUEUE, SHARDS_QUEUE, type ShardResult } from '../queue/types.js';
import type { BatchOrigin, ForwardStats, LayertapWorker, LayertapWorkerOptions } from '../queue/worker.js';
import { VERSION } from '../version.js';
import { DEFAULTS } from '../config/defaults.js';
import { allowedHostName, hostName, LOOPBACK_NAMES } from './dashboard/access.js';

/** Queues whose depth is reported, by their BullMQ names. */
export const METRIC_QUEUES = [RUNS_QUEUE, SHARDS_QUEUE, SCHEDULES_QUEUE] as const;

/** Job states counted per queue (BullMQ's getJobCounts). */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;

/** Longest a scrape waits for queue depth. */
const QUEUE_COUNT_TIMEOUT_MS = 2000;

/** Batch latency buckets, seconds: a small model's batch takes milliseconds, a stuck one minutes. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Options for {@link WorkerMetrics}. */
export interface WorkerMetricsOptions {
  /** where the queues live (for queue depth, read on each scrape) */
  settings: QueueSettings;
  /**
   * runs whose per-run series are kept; older runs' series are dropped, so a long-lived worker
   * does not export one series per run it ever saw. @defaultValue 20
   */
  maxRuns?: number;
  /** process and Node.js metrics (CPU, memory, event loop lag, GC). @defaultValue true */
  defaultMetrics?: boolean;
  /** problems while collecting (e.g. Redis unreachable during a scrape). @defaultValue ignored */
  onError?: (err: Error) => void;
}

/**
 * Prometheus metrics of one worker process. Pass {@link hooks} to `LayertapWorker`, then
 * {@link attach} the worker (pool utilisation, active shards), then {@link listen}.
 *
 * @example
 * ```ts
 * const metrics = new WorkerMetrics({ settings });
 * const worker = new LayertapWorker({ settings, ...metrics.hooks });
 * metrics.attach(worker);
 * await metrics.listen(9464);   // GET http://127.0.0.1:9464/metrics (listen(9464, '0.0.0.0') for every interface)
 * // layertap_rows_total{run="20261127T061502-3fa9c1",name="products",tap="embedding"} 1024
 * ```
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly rows: Counter<'run' | 'name' | 'tap'>;
  private readonly errorRows: Counter<'run' | 'name' | 'tap'>;
  private readonly shards: Counter<'run' | 'name'>;
  private readonly batchRows: Counter<'backend'>;
  private readonly latency: Histogram<'phase' | 'backend'>;
  private readonly backends: Gauge<'backend'>;
  /** per-run series, oldest first, so the oldest can be dropped */
  private readonly runs = new Map<string, BatchOrigin>();
  private readonly maxRuns: number;
  private queues: Array<Queue> | null = null;
  private worker: LayertapWorker | null = null;
  private server: Server | null = null;

  constructor(private readonly opts: WorkerMetricsOptions) {
    this.maxRuns = opts.maxRuns ?? 20;
    if (!Number.isInteger(this.maxRuns) || this.maxRuns < 1) throw new Error(`options.maxRuns must be a positive integer, got ${opts.maxRuns}`);
    const registers = [this.registry];
    // gauges below read this object when scraped (prom-client calls collect with the gauge as `this`)
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.rows = new Counter({
      name: 'layertap_rows_total',
      help: 'Rows with features committed, per run and tap column (counted when a shard commits)',
      labelNames: ['run', 'name', 'tap'],
      registers,
    });
    this.errorRows = new Counter({
      name: 'layertap_error_rows_total',
      help: 'Rows committed as error rows (unreadable, undecodable or non-finite features), per run and tap column',
      labelNames: ['run', 'name', 'tap'],
      registers,
    });
    this.shards = new Counter({
      name: 'layertap_shards_committed_total',
      help: 'Shards committed by this worker, per run',
      labelNames: ['run', 'name'],
      registers,
    });
    this.batchRows = new Counter({
      name: 'layertap_batch_rows_total',
      help: 'Rows through the model as they happen (a retried shard counts again); rate() is the live throughput',
      labelNames: ['backend'],
      registers,
    });
    this.latency = new Histogram({
      name: 'layertap_batch_duration_seconds',
      help: 'Per batch: decode (read, decode, preprocess in the thread), forward (model with taps), total (submission to result, including the wait for a thread)',
      labelNames: ['phase', 'backend'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.backends = new Gauge({
      name: 'layertap_backend_in_use',
      help: 'Model backends this worker has run batches on (1 per backend)',
      labelNames: ['backend'],
      registers,
    });

    new Gauge({
      name: 'layertap_worker_info',
      help: 'This worker: its name (host:pid) and layertap version',
      labelNames: ['worker', 'version'],
      registers,
      collect: function () {
        // set on scrape: the worker may be attached after the registry is made
        this.reset();
        if (self.worker) this.set({ worker: self.worker.name, version: VERSION }, 1);
      },
    });
    new Gauge({
      name: 'layertap_active_shards',
      help: 'Shard jobs this worker is processing now',
      registers,
      collect: function () {
        this.set(self.worker?.activeShards ?? 0);
      },
    });
    new Gauge({
      name: 'layertap_pool_utilization',
      help: "Fraction of the model threads' time spent running batches since the pool started (0-1), per pool",
      labelNames: ['threads'],
      registers,
      collect: function () {
        this.reset();
        for (const p of self.worker?.poolStats ?? []) this.set({ threads: String(p.threads) }, p.utilization);
      },
    });
    new Gauge({
      name: 'layertap_pool_queued_batches',
      help: 'Batches waiting for a free model thread, per pool',
      labelNames: ['threads'],
      registers,
      collect: function () {
        this.reset();
        for (const p of self.worker?.poolStats ?? []) this.set({ threads: String(p.threads) }, p.queued);
      },
    });
    new Gauge({
      name: 'layertap_queue_jobs',
      help: 'Jobs per queue and state in Redis (read on each scrape; the same for every worker of a deployment)',
      labelNames: ['queue', 'state'],
      registers,
      collect: async function () {
        this.reset();
        try {
          for (const [name, counts] of await self.queueCounts()) {
            for (const s of QUEUE_STATES) this.set({ queue: name, state: s }, counts[s] ?? 0);
          }
        } catch (e) {
          // no series rather than stale ones; the scrape itself still answers
          self.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
        }
      },
    });
  }

  /** Options to spread into `new LayertapWorker({ ... })`. */
  get hooks(): Pick<LayertapWorkerOptions, 'onForward' | 'onShard'> {
    return {
      onForward: (origin, stats) => this.guard(() => this.forward(origin, stats)),
      onShard: (origin, result) => this.guard(() => this.shard(origin, result)),
    };
  }

  /** The worker whose pools and active shards are reported. */
  attach(worker: LayertapWorker): this {
    this.worker = worker;
    return this;
  }

  /** The exposition text, as served at /metrics. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Serve `GET /metrics` (Prometheus text format) on `port` (0: a free one) and `host`. The
   * metrics name datasets, runs and queue depths, so only this machine sees them unless a wider
   * `host` is given (`'0.0.0.0'` for a scraper on another host or in a container network).
   * Requests must name the server in their Host header by an IP address, localhost, `host`, or
   * one of `allowHosts`: a page that re-points its own DNS name at this address (DNS
   * rebinding) sends that name and is refused, as the dashboard refuses it.
   * @defaultValue host '127.0.0.1', allowHosts none
   * @returns the bound port
   */
  async listen(port: number, host: string = DEFAULTS.ops.metricsHost, opts: { allowHosts?: readonly string[] } = {}): Promise<number> {
    if (this.server) throw new Error('metrics server already listening');
    const allowed = new Set<string>(LOOPBACK_NAMES);
    for (const h of [...(host === '0.0.0.0' || host === '::' ? [] : [host]), ...(opts.allowHosts ?? [])]) allowed.add(allowedHostName(h));
    const server = createServer((req, res) => {
      const name = hostName(req.headers.host ?? '');
      // an address is never a rebound name: scrapers that find targets by IP (Prometheus DNS-SD, Kubernetes) pass
      if (!allowed.has(name) && isIP(name.replace(/^\[|\]$/g, '')) === 0) {
        const why = name === '' ? 'a request without a Host header is refused' : `Host '${name}' is not allowed (add it with --metrics-allow-host ${name})`;
        res.writeHead(403, { 'content-type': 'text/plain' }).end(`layertap worker metrics: ${why}\n`);
        return;
      }
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        this.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
          (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${(e as Error).message}\n`),
        );
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('layertap worker metrics: see /metrics\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  /** Stop serving and close the queue connections used for queue depth. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
    const queues = this.queues ?? [];
    this.queues = null;
    await Promise.allSettled(queues.map((q) => q.close()));
  }

  private forward(origin: BatchOrigin, s: ForwardStats): void {
    this.touch(origin);
    this.backends.set({ backend: s.backend }, 1);
    this.batchRows.inc({ backend: s.backend }, s.rows);
    this.latency.observe({ phase: 'decode', backend: s.backend }, s.decodeMs / 1000);
    this.latency.observe({ phase: 'forward', backend: s.backend }, s.forwardMs / 1000);
    this.latency.observe({ phase: 'total', backend: s.backend }, s.totalMs / 1000);
  }

  private shard(origin: BatchOrigin, r: ShardResult): void {
    this.touch(origin);
    const run = { run: origin.runId, name: origin.name };
    for (const tap of origin.taps) {
      this.rows.inc({ ...run, tap }, r.rows);
      this.errorRows.inc({ ...run, tap }, r.errorRows);
    }
    this.shards.inc(run);
  }

  /** Mark a run as recent; drop the series of the oldest runs beyond maxRuns. */
  private touch(origin: BatchOrigin): void {
    this.runs.delete(origin.runId);
    this.runs.set(origin.runId, origin);
    while (this.runs.size > this.maxRuns) {
      const [oldId, old] = this.runs.entries().next().value as [string, BatchOrigin];
      this.runs.delete(oldId);
      const run = { run: oldId, name: old.name };
      for (const tap of old.taps) {
        this.rows.remove({ ...run, tap });
        this.errorRows.remove({ ...run, tap });
      }
      this.shards.remove(run);
    }
  }

  private async queueCounts(): Promise<Array<[string, Record<string, number>]>> {
    this.queues ??= METRIC_QUEUES.map((name) => {
      const q = new Queue(name, { connection: bullConnection(this.opts.settings.redisUrl), prefix: this.opts.settings.prefix });
      // a scrape reports the failure; without a listener every reconnect prints a stack trace
      q.on('error', () => undefined);
      return q;
    });
    const counts = Promise.all(this.queues.map(async (q) => [q.name, await q.getJobCounts(...QUEUE_STATES)] as [string, Record<string, number>]));
    // BullMQ connections wait for Redis to come back; a scrape must not wait with them
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`queue depth: Redis did not answer within ${QUEUE_COUNT_TIMEOUT_MS} ms`)), QUEUE_COUNT_TIMEOUT_MS);
    });
    try {
      return await Promise.race([counts, timeout]);
    } finally {
      clearTimeout(timer);
      counts.catch(() => undefined);
    }
  }

  /** Metrics never break the work they observe. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
    }
  }
}
