// layertap end to end, as `layertap run` does it: resolve the job, enqueue a BullMQ flow, an
// embedded worker (or `layertap worker` processes) embeds every shard, the run is committed.
// The worker stays up between runs, so the models in its threads are loaded once (by the
// warm-up run) and the timed runs measure steady-state throughput, as a long-lived worker has.
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { CLI, dist } from './common.js';

/** Longest one timed run may take before the bench gives up on it. */
const RUN_TIMEOUT_MS = 15 * 60_000;

/** Settings for a bench run: REDIS_URL or 127.0.0.1:6379 (or a private redis-server), and a unique prefix. */
export async function benchRedis(log) {
  const { connectRedis } = await dist('queue/index.js');
  const { callbackLogger } = await dist('types/logger.js');
  const prefix = `layertap-bench-${process.pid}-${Date.now().toString(36)}`;
  const { settings, stop } = await connectRedis(
    { prefix },
    callbackLogger((msg) => log(msg)),
  );
  return { settings: { ...settings, allowEviction: true }, stop };
}

/**
 * Time one run from job resolution to its committed manifest. The end is seen through BullMQ's
 * event stream (the run's parent job completing), not by polling, so that the measurement adds no
 * Redis traffic to the process being measured; a slow poll is the fallback.
 */
async function timedRun(client, events, jobConfig, cwd) {
  const { parseJob } = await dist('index.js');
  const { resolveJob } = await dist('pipeline/index.js');
  const t0 = performance.now();
  const resolved = await resolveJob(parseJob(jobConfig), { cwd });
  let runId = null;
  let ended = false;
  let wake = () => undefined;
  const onEvent = ({ jobId }) => {
    if (jobId !== runId) return;
    ended = true;
    wake();
  };
  events.on('completed', onEvent);
  events.on('failed', onEvent);
  let summary;
  try {
    const rec = await client.enqueue(resolved);
    runId = rec.runId;
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`bench run ${runId} did not finish within ${RUN_TIMEOUT_MS / 1000} s`);
      summary = await client.status(runId);
      if (!summary) throw new Error(`no run ${runId}`);
      if (['committed', 'failed', 'partial'].includes(summary.status)) break;
      if (ended) {
        // the run job is over; its record may trail by a moment
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      await new Promise((r) => {
        const t = setTimeout(r, 1000);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  } finally {
    events.off('completed', onEvent);
    events.off('failed', onEvent);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (summary.status !== 'committed') throw new Error(`bench run ${runId} ended ${summary.status}: ${summary.error ?? ''}`);
  if (summary.errorRows > 0) throw new Error(`bench run ${runId}: ${summary.errorRows} error rows`);
  return { seconds, rows: summary.rows, summary, outputUri: summary.output?.uri };
}

/** BullMQ events of the runs queue (a blocking read on a connection of its own). */
async function runEvents(settings) {
  const { QueueEvents } = await import('bullmq');
  const { bullConnection } = await dist('queue/connection.js');
  const { RUNS_QUEUE } = await dist('queue/types.js');
  const events = new QueueEvents(RUNS_QUEUE, { connection: bullConnection(settings.redisUrl), prefix: settings.prefix });
  events.on('error', () => undefined);
  await events.waitUntilReady();
  return events;
}

/** An embedded worker (the one `layertap run` starts) kept warm across runs. */
export class InProcessPipeline {
  static async start(settings, { threads, workers = 2, groupByLength }) {
    const { LayertapClient, LayertapWorker } = await dist('index.js');
    const client = new LayertapClient(settings);
    const logs = [];
    const worker = new LayertapWorker({
      settings,
      concurrency: workers,
      threads,
      log: (l) => logs.push(l),
      ...(groupByLength !== undefined ? { groupByLength } : {}),
    });
    await client.waitUntilReady();
    await worker.start();
    return new InProcessPipeline(client, worker, logs, await runEvents(settings));
  }

  constructor(client, worker, logs, events) {
    this.client = client;
    this.worker = worker;
    this.logs = logs;
    this.events = events;
  }

  /** One timed run; its part files are removed unless `keep` (then the caller removes `outputUri`). */
  async run(jobConfig, cwd, { keep = false } = {}) {
    const r = await timedRun(this.client, this.events, jobConfig, cwd);
    // the part files are not needed; keep the disk flat across many runs
    if (r.outputUri && !keep) await rm(r.outputUri, { recursive: true, force: true });
    return r;
  }

  async close() {
    await this.events.close();
    await this.worker.close();
    await this.client.close();
  }
}

/** `layertap worker` processes (the CLI), fed by a client in this process. */
export class ProcessPipeline {
  static async start(settings, { processes, threads, workers = 2 }) {
    const { LayertapClient } = await dist('index.js');
    const env = { ...process.env, REDIS_URL: settings.redisUrl, LAYERTAP_PREFIX: settings.prefix, LAYERTAP_ALLOW_EVICTION: '1' };
    const procs = [];
    for (let i = 0; i < processes; i++) {
      const p = spawn(process.execPath, [CLI, 'worker', '--threads', String(threads), '--concurrency', String(workers)], {
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let log = '';
      p.stderr.on('data', (d) => (log += d));
      procs.push({ p, log: () => log });
    }
    for (const { p, log } of procs) {
      const until = Date.now() + 60_000;
      while (!log().includes('worker: ready')) {
        if (p.exitCode !== null) throw new Error(`layertap worker exited: ${log()}`);
        if (Date.now() > until) throw new Error(`layertap worker not ready after 60 s: ${log()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const client = new LayertapClient(settings);
    await client.waitUntilReady();
    return new ProcessPipeline(client, procs, await runEvents(settings));
  }

  constructor(client, procs, events) {
    this.client = client;
    this.procs = procs;
    this.events = events;
  }

  async run(jobConfig, cwd) {
    const r = await timedRun(this.client, this.events, jobConfig, cwd);
    if (r.outputUri) await rm(r.outputUri, { recursive: true, force: true });
    return r;
  }

  async close() {
    await this.events.close();
    await this.client.close();
    await Promise.all(
      this.procs.map(
        ({ p }) =>
          new Promise((res) => {
            if (p.exitCode !== null) return res();
            p.once('exit', res);
            p.kill('SIGTERM');
          }),
      ),
    );
  }
}
