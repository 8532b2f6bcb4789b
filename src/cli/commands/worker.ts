import { InvalidArgumentError, type Command } from 'commander';
import { allowedHostName } from '../../ops/dashboard/access.js';
import { redactUrl, settingsFromEnv } from '../../queue/connection.js';
import { DEFAULTS } from '../../config/defaults.js';
import { WORKER_DEFAULTS } from '../../queue/worker-options.js';
import { ALLOW_EVICTION_HELP, examples, EXIT, nonNegativeInt, portNumber, positiveInt, type SetExit } from '../common.js';

/** Parsed options of `layertap worker`. */
interface WorkerOptions {
  metricsPort?: number;
  metricsHost?: string;
  metricsAllowHost?: string[];
  concurrency?: number;
  threads?: number;
  lockMs?: number;
  stalledMs?: number;
  maxStalls?: number;
  graceMs?: number;
  batchTimeoutMs?: number;
  storageOutageMs?: number;
  allowEviction?: boolean;
}

/** Option parser of --metrics-allow-host: a host name (a port is ignored), collected over repeats. */
function hostNames(value: string, previous: string[] = []): string[] {
  try {
    return [...previous, allowedHostName(value)];
  } catch (e) {
    throw new InvalidArgumentError(`--metrics-allow-host: ${(e as Error).message}`);
  }
}

/** `layertap worker`: process shard jobs until a signal, then shut down gracefully. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('worker')
    .description('process shard jobs until SIGTERM/SIGINT, then finish active shards and exit')
    .addHelpText('after', examples('REDIS_URL=redis://redis.internal:6379 layertap worker --threads 4 --metrics-port 9464'))
    .option('--concurrency <n>', `shard jobs at once (default ${WORKER_DEFAULTS.concurrency})`, positiveInt('--concurrency'))
    .option('--threads <n>', 'model threads in the pool (default: cores)', positiveInt('--threads'))
    .option(
      '--lock-ms <ms>',
      `job lock duration: a dead worker's shards are retried this long after it died (default ${WORKER_DEFAULTS.lockDurationMs})`,
      positiveInt('--lock-ms'),
    )
    .option('--stalled-ms <ms>', 'how often to look for shards of dead workers (default: a quarter of --lock-ms)', positiveInt('--stalled-ms'))
    .option(
      '--max-stalls <n>',
      `times a shard may be recovered from a dead worker before it fails (default ${WORKER_DEFAULTS.maxStalledCount})`,
      nonNegativeInt('--max-stalls'),
    )
    .option(
      '--grace-ms <ms>',
      `on SIGTERM/SIGINT, how long active shards may finish before they are handed back (default ${WORKER_DEFAULTS.graceMs})`,
      nonNegativeInt('--grace-ms'),
    )
    .option(
      '--batch-timeout-ms <ms>',
      `longest a batch may run before its thread is stopped and the attempt fails; 0 = no limit (default ${DEFAULTS.pool.batchTimeoutMs})`,
      nonNegativeInt('--batch-timeout-ms'),
    )
    .option(
      '--storage-outage-ms <ms>',
      `how long shards and finalizing wait for storage that does not answer, without spending attempts (default ${WORKER_DEFAULTS.storageOutageMs})`,
      nonNegativeInt('--storage-outage-ms'),
    )
    .option('--allow-eviction', ALLOW_EVICTION_HELP)
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<host>:<port>/metrics', portNumber('--metrics-port'))
    .option(
      '--metrics-host <host>',
      `interface for --metrics-port (default ${DEFAULTS.ops.metricsHost}; 0.0.0.0 for a Prometheus on another host or container)`,
    )
    .option(
      '--metrics-allow-host <name>',
      'also answer metrics requests for this Host name, e.g. the DNS name a scraper uses (repeatable; IP addresses, localhost and --metrics-host always)',
      hostNames,
    )
    .action(async (o: WorkerOptions) => {
      const [{ LayertapWorker }, { createLogger }, metricsModule] = await Promise.all([
        import('../../queue/worker.js'),
        import('../../ops/logger.js'),
        // prom-client only for a worker that serves metrics
        o.metricsPort !== undefined ? import('../../ops/metrics.js') : null,
      ]);
      const settings = settingsFromEnv();
      if (o.allowEviction) settings.allowEviction = true;
      const graceMs = o.graceMs ?? WORKER_DEFAULTS.graceMs;
      // structured records on stderr (JSON, or text at a terminal); the worker binds its name to each
      const root = createLogger();
      let logger = root;
      const metrics = metricsModule
        ? new metricsModule.WorkerMetrics({ settings, onError: (e) => logger.warn({}, `layertap worker: metrics: ${e.message}`) })
        : null;
      const worker = new LayertapWorker({
        settings,
        logger: root,
        ...(metrics ? metrics.hooks : {}),
        ...(o.concurrency ? { concurrency: o.concurrency } : {}),
        ...(o.threads ? { threads: o.threads } : {}),
        ...(o.lockMs !== undefined ? { lockDurationMs: o.lockMs } : {}),
        ...(o.stalledMs !== undefined ? { stalledIntervalMs: o.stalledMs } : {}),
        ...(o.maxStalls !== undefined ? { maxStalledCount: o.maxStalls } : {}),
        ...(o.batchTimeoutMs !== undefined ? { batchTimeoutMs: o.batchTimeoutMs } : {}),
        ...(o.storageOutageMs !== undefined ? { storageOutageMs: o.storageOutageMs } : {}),
        graceMs,
      });
      logger = root.child({ worker: worker.name });
      const say = (msg: string) => logger.info({}, msg);
      try {
        await worker.start();
        if (metrics) {
          const host = o.metricsHost ?? DEFAULTS.ops.metricsHost;
          const port = await metrics.attach(worker).listen(o.metricsPort!, host, { allowHosts: o.metricsAllowHost ?? [] });
          say(`layertap worker: metrics at http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`);
        }
      } catch (e) {
        await worker.close({ graceMs: 0 }).catch(() => undefined);
        await metrics?.close();
        const message = e instanceof Error ? e.message : String(e);
        const portTaken = o.metricsPort !== undefined && (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
        logger.error({}, `layertap: ${portTaken ? `--metrics-port ${o.metricsPort}: ${message}` : message}`);
        setExit(EXIT.failed);
        return;
      }
      say(`layertap worker: ready (redis ${redactUrl(settings.redisUrl)}, prefix ${settings.prefix}, pid ${process.pid}, name ${worker.name})`);
      const clean = await new Promise<boolean>((resolve) => {
        let signals = 0;
        const stop = (sig: string) => {
          signals++;
          if (signals > 1) {
            logger.warn({ signal: sig }, `layertap worker: ${sig} again: handing back active shards now`);
            worker.handBackActive();
            return;
          }
          say(`layertap worker: ${sig}: finishing active shards (up to ${graceMs} ms, then handing them back)`);
          // hand-back needs Redis; if it is gone, give up rather than hang (the locks expire instead)
          const hard = setTimeout(() => {
            logger.warn({}, 'layertap worker: could not hand back active shards in time; exiting, they are retried when their locks expire');
            resolve(false);
          }, graceMs + 15_000);
          hard.unref();
          worker.close().then(
            () => resolve(true),
            () => resolve(false),
          );
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
      });
      await metrics?.close();
      say('layertap worker: stopped');
      setExit(clean ? EXIT.ok : EXIT.failed);
    });
}
