import { Command, InvalidArgumentError } from 'commander';
import { JobConfigError } from '../config/errors.js';
import { loadJobFile } from '../config/load.js';
import { absoluteUri, defaultColumnName, resolveJob } from '../config/resolve.js';
import { listLayers } from '../models/index.js';
import { LayertapClient } from '../queue/client.js';
import { redactUrl, settingsFromEnv } from '../queue/connection.js';
import { checkRedis } from '../queue/redis-checks.js';
import { runJob } from '../queue/run.js';
import type { RunSummary } from '../queue/types.js';
import { LayertapWorker, WORKER_DEFAULTS } from '../queue/worker.js';
import { ScheduleManager } from '../queue/schedules.js';
import { rebuildRegistry } from '../queue/registry-rebuild.js';
import type { JobConfig } from '../config/schema.js';
import { VERSION } from '../version.js';
import { createLogger, workerLog } from '../ops/logger.js';
import { WorkerMetrics } from '../ops/metrics.js';
import { DEFAULT_DASHBOARD_PORT, startDashboard } from '../ops/dashboard/index.js';
import { writeDemoImages } from './demo-data.js';
import { neighbourReport, readFeatureRows } from './neighbours.js';
import { ProgressDisplay } from './progress.js';

/** Exit codes: 0 done, 1 the work failed, 2 bad input (job file, arguments, model), 3 partial run (some shards failed, the rest committed). */
export const EXIT = { ok: 0, failed: 1, usage: 2, partial: 3 } as const;

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

function portNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`${name} must be a port number (0-65535; 0 picks a free one)`);
    return n;
  };
}

const err = (line: string) => process.stderr.write(`${line}\n`);
const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

function printSummary(s: RunSummary): void {
  const lines = [
    `run ${s.runId}: ${s.status}`,
    `  rows        ${s.rows} embedded, ${s.errorRows} error rows, of ${s.totalRows}`,
    `  shards      ${s.shards.done} done, ${s.shards.failed} failed, of ${s.shards.total}`,
    `  fingerprint ${s.fingerprint}`,
    `  backend     ${s.backend ?? '-'}`,
    `  time        ${s.seconds.toFixed(2)} s${s.rowsPerSecond ? ` (${s.rowsPerSecond.toFixed(1)} rows/s)` : ''}`,
    `  output      ${s.output.uri}`,
  ];
  if (s.output.manifest) lines.push(`  manifest    ${s.output.manifest}`);
  for (const f of s.output.files.slice(0, 5)) lines.push(`  part        ${f}`);
  if (s.output.files.length > 5) lines.push(`  ...         ${s.output.files.length - 5} more part files`);
  for (const f of s.output.errorFiles.slice(0, 5)) lines.push(`  errors      ${f}`);
  if (s.error) lines.push(`  error       ${s.error}`);
  out(lines.join('\n'));
}

async function printNeighbours(s: RunSummary, column: string): Promise<void> {
  if (s.status !== 'committed' || s.rows > 2000 || s.output.uri.includes('://')) return;
  const { ids, rows } = await readFeatureRows(s.output.files, column);
  const r = neighbourReport(column, ids, rows);
  if (!r) return;
  out(
    [
      `similarity of '${column}' by folder (${r.rows} rows, ${r.groups} folders):`,
      `  mean cosine, same folder       ${r.withinMean.toFixed(4)}`,
      `  mean cosine, different folders ${r.betweenMean.toFixed(4)}`,
      `  nearest neighbour in same folder: ${(r.nearestSameGroup * 100).toFixed(1)}% of rows`,
    ].join('\n'),
  );
}

function fail(e: unknown, json: boolean): number {
  const message = e instanceof Error ? e.message : String(e);
  if (json) out(JSON.stringify({ error: message, ...(e instanceof JobConfigError ? { fields: e.fields } : {}) }));
  err(`layertap: ${message}`);
  return e instanceof JobConfigError ? EXIT.usage : EXIT.failed;
}

/** Connect to the deployment's Redis (REDIS_URL), run `fn`, close. */
async function withClient<T>(fn: (client: LayertapClient) => Promise<T>, opts: { writes?: boolean } = {}): Promise<T> {
  const settings = settingsFromEnv();
  // commands that only read are not refused over the eviction policy; ones that add schedules are
  const check = await checkRedis(settings.redisUrl, opts.writes ? {} : { allowEviction: true });
  for (const w of check.warnings) err(`layertap: warning: ${w}`);
  const client = new LayertapClient(settings);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** A job whose local paths are absolute, so that it means the same on any host and at any time. */
function absolutePaths(job: JobConfig): JobConfig {
  const abs = (u: string) => absoluteUri(u);
  return { ...job, source: { ...job.source, uri: abs(job.source.uri) }, model: { ...job.model, uri: abs(job.model.uri) }, sink: { ...job.sink, uri: abs(job.sink.uri) } };
}

function describeTiming(s: { cron: string | null; tz: string | null; every: number | null }): string {
  if (s.cron) return `cron "${s.cron}"${s.tz ? ` (${s.tz})` : ''}`;
  return `every ${s.every} ms`;
}

/** Left-aligned text columns. */
function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

/** Build the command tree; `main` runs it. Exported for tests. */
export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('layertap')
    .description('Tap layers of a model over a dataset and write the features as Arrow files')
    .version(VERSION)
    .showHelpAfterError();

  program
    .command('layers <model-uri>')
    .description('list every layer/node: name, class/op, output shape, parameters')
    .option('--json', 'print one JSON object on stdout')
    .action(async (uri: string, o: { json?: boolean }) => {
      try {
        const layers = await listLayers(uri);
        if (o.json) {
          out(JSON.stringify({ model: uri, layers }));
          return;
        }
        // ONNX exports from PyTorch name nodes after modules: show the path a tap can use
        const modules = layers.some((l) => l.module);
        const rows = layers.map((l) => [l.name, l.className, JSON.stringify(l.outputShape), String(l.params), ...(modules ? [l.module || '-'] : [])]);
        const head = ['name', 'class', 'output shape', 'params', ...(modules ? ['module'] : [])];
        const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        const fmt = (r: string[]) => r.map((c, i) => (i === 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
        out([fmt(head), ...rows.map(fmt)].join('\n'));
        out(`${layers.length} layers, ${layers.reduce((a, l) => a + l.params, 0)} parameters`);
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });

  program
    .command('run <job-file>')
    .description('enqueue a job and process it with an embedded worker until the run is committed')
    .option('--workers <n>', 'shard jobs processed at once', positiveInt('--workers'))
    .option('--threads <n>', 'model threads in the pool (default: cores)', positiveInt('--threads'))
    .option('--allow-eviction', "use a Redis whose maxmemory-policy is not noeviction (it may lose jobs); also LAYERTAP_ALLOW_EVICTION=1")
    .option('--json', 'print one JSON summary on stdout')
    .action(async (file: string, o: { workers?: number; threads?: number; allowEviction?: boolean; json?: boolean }) => {
      const progress = new ProgressDisplay(true);
      try {
        const summary = await runJob(file, {
          ...(o.workers ? { workers: o.workers } : {}),
          ...(o.threads ? { threads: o.threads } : {}),
          ...(o.allowEviction ? { settings: { allowEviction: true } } : {}),
          onProgress: (s) => progress.update(s),
          log: (l) => {
            // worker progress lines are noise next to the progress bar; its warnings are not
            if (!l.startsWith('layertap worker:') || l.startsWith('layertap worker: warning:')) err(l);
          },
        });
        progress.stop();
        if (o.json) out(JSON.stringify(summary));
        else {
          printSummary(summary);
          const job = await loadJobFile(file);
          const first = job.taps[0];
          if (first && first.dtype === 'float32') await printNeighbours(summary, first.as ?? defaultColumnName(first));
        }
        setExit(summary.status === 'committed' ? EXIT.ok : summary.status === 'partial' ? EXIT.partial : EXIT.failed);
      } catch (e) {
        progress.stop();
        setExit(fail(e, !!o.json));
      }
    });

  program
    .command('enqueue <job-file>')
    .description('validate and enqueue a job; prints the run id (workers do the work)')
    .option('--allow-eviction', "use a Redis whose maxmemory-policy is not noeviction (it may lose jobs); also LAYERTAP_ALLOW_EVICTION=1")
    .option('--json', 'print one JSON object on stdout')
    .action(async (file: string, o: { allowEviction?: boolean; json?: boolean }) => {
      try {
        const resolved = await resolveJob(await loadJobFile(file));
        const settings = settingsFromEnv();
        if (o.allowEviction) settings.allowEviction = true;
        const check = await checkRedis(settings.redisUrl, { allowEviction: settings.allowEviction ?? false });
        for (const w of check.warnings) err(`layertap: warning: ${w}`);
        const client = new LayertapClient(settings);
        try {
          const rec = await client.enqueue(resolved);
          if (o.json) out(JSON.stringify({ runId: rec.runId, status: rec.status, shards: rec.shards, rows: rec.totalRows, fingerprint: rec.fingerprint, deduplicated: rec.deduplicated ?? false, output: { uri: rec.outputUri } }));
          else out(rec.runId);
          if (rec.deduplicated) err(`an identical run is already ${rec.status}: ${rec.runId} (nothing new enqueued)`);
          else err(`enqueued run ${rec.runId}: ${rec.totalRows} rows in ${rec.shards} shard(s) -> ${rec.outputUri}`);
        } finally {
          await client.close();
        }
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });

  program
    .command('worker')
    .description('process shard jobs until SIGTERM/SIGINT, then finish active shards and exit')
    .option('--concurrency <n>', 'shard jobs at once', positiveInt('--concurrency'))
    .option('--threads <n>', 'model threads in the pool (default: cores)', positiveInt('--threads'))
    .option('--lock-ms <ms>', `job lock duration: a dead worker's shards are retried this long after it died (default ${WORKER_DEFAULTS.lockDurationMs})`, positiveInt('--lock-ms'))
    .option('--stalled-ms <ms>', 'how often to look for shards of dead workers (default: --lock-ms)', positiveInt('--stalled-ms'))
    .option('--max-stalls <n>', `times a shard may be recovered from a dead worker before it fails (default ${WORKER_DEFAULTS.maxStalledCount})`, nonNegativeInt('--max-stalls'))
    .option('--grace-ms <ms>', `on SIGTERM/SIGINT, how long active shards may finish before they are handed back (default ${WORKER_DEFAULTS.graceMs})`, nonNegativeInt('--grace-ms'))
    .option('--batch-timeout-ms <ms>', 'longest a batch may run before its thread is stopped and the attempt fails; 0 = no limit (default 300000)', nonNegativeInt('--batch-timeout-ms'))
    .option('--allow-eviction', "use a Redis whose maxmemory-policy is not noeviction (it may lose jobs); also LAYERTAP_ALLOW_EVICTION=1")
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<host>:<port>/metrics', portNumber('--metrics-port'))
    .option('--metrics-host <host>', 'interface for --metrics-port (default: all interfaces)')
    .action(
      async (o: {
        metricsPort?: number;
        metricsHost?: string;
        concurrency?: number;
        threads?: number;
        lockMs?: number;
        stalledMs?: number;
        maxStalls?: number;
        graceMs?: number;
        batchTimeoutMs?: number;
        allowEviction?: boolean;
      }) => {
        const settings = settingsFromEnv();
        if (o.allowEviction) settings.allowEviction = true;
        const graceMs = o.graceMs ?? WORKER_DEFAULTS.graceMs;
        // structured lines on stderr (JSON, or text at a terminal); every line names this worker
        let logger = createLogger();
        let say = workerLog(logger);
        const metrics = o.metricsPort !== undefined ? new WorkerMetrics({ settings, onError: (e) => logger.warn(`layertap worker: metrics: ${e.message}`) }) : null;
        const worker = new LayertapWorker({
          settings,
          log: (line) => say(line),
          ...(metrics ? metrics.hooks : {}),
          ...(o.concurrency ? { concurrency: o.concurrency } : {}),
          ...(o.threads ? { threads: o.threads } : {}),
          ...(o.lockMs !== undefined ? { lockDurationMs: o.lockMs } : {}),
          ...(o.stalledMs !== undefined ? { stalledIntervalMs: o.stalledMs } : {}),
          ...(o.maxStalls !== undefined ? { maxStalledCount: o.maxStalls } : {}),
          ...(o.batchTimeoutMs !== undefined ? { batchTimeoutMs: o.batchTimeoutMs } : {}),
          graceMs,
        });
        logger = logger.child({ worker: worker.name });
        say = workerLog(logger);
        try {
          await worker.start();
          if (metrics) {
            const port = await metrics.attach(worker).listen(o.metricsPort!, o.metricsHost);
            say(`layertap worker: metrics at http://${o.metricsHost ?? '0.0.0.0'}:${port}/metrics`);
          }
        } catch (e) {
          await worker.close({ graceMs: 0 }).catch(() => undefined);
          await metrics?.close();
          const message = e instanceof Error ? e.message : String(e);
          logger.error(`layertap: ${o.metricsPort !== undefined && /EADDRINUSE/.test(message) ? `--metrics-port ${o.metricsPort}: ${message}` : message}`);
          setExit(EXIT.failed);
          return;
        }
        say(`layertap worker: ready (redis ${redactUrl(settings.redisUrl)}, prefix ${settings.prefix}, pid ${process.pid}, name ${worker.name})`);
        const clean = await new Promise<boolean>((resolve) => {
          let signals = 0;
          const stop = (sig: string) => {
            signals++;
            if (signals > 1) {
              say(`layertap worker: ${sig} again: handing back active shards now`);
              worker.handBackActive();
              return;
            }
            say(`layertap worker: ${sig}: finishing active shards (up to ${graceMs} ms, then handing them back)`);
            // hand-back needs Redis; if it is gone, give up rather than hang (the locks expire instead)
            const hard = setTimeout(() => {
              say('layertap worker: could not hand back active shards in time; exiting, they are retried when their locks expire');
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
      },
    );

  program
    .command('status <run-id>')
    .description('state, shards done/failed, rows, errors, output location')
    .option('--json', 'print one JSON object on stdout')
    .action(async (runId: string, o: { json?: boolean }) => {
      const settings = settingsFromEnv();
      try {
        // reading state loses nothing, so only reachability and credentials are checked here
        await checkRedis(settings.redisUrl, { allowEviction: true });
        const client = new LayertapClient(settings);
        try {
          const s = await client.status(runId);
          if (!s) throw new Error(`no run with id '${runId}' (prefix ${settings.prefix})`);
          if (o.json) out(JSON.stringify(s));
          else printSummary(s);
        } finally {
          await client.close();
        }
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });

  const schedule = program.command('schedule').description('cron or interval schedules that enqueue a job again (incremental by default)');
  schedule
    .command('add <job-file>')
    .description('add or replace a schedule (same id: replaced, so several hosts may add it)')
    .option('--cron <expr>', 'cron pattern, e.g. "0 3 * * *"')
    .option('--tz <zone>', 'time zone of the cron pattern, e.g. Europe/Berlin')
    .option('--every <ms>', 'fixed interval in milliseconds', positiveInt('--every'))
    .option('--id <id>', 'schedule id (default: the job name)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (file: string, o: { cron?: string; tz?: string; every?: number; id?: string; json?: boolean }) => {
      try {
        if (!!o.cron === !!o.every) throw new JobConfigError('schedule add: give exactly one of --cron EXPR or --every MS');
        if (o.tz && !o.cron) throw new JobConfigError('schedule add: --tz goes with --cron');
        const job = await loadJobFile(file);
        // validate against the model and source now, so a bad schedule fails here and not at 3 am
        await resolveJob(job);
        const absolute = absolutePaths(job);
        await withClient(async (client) => {
          const mgr = new ScheduleManager(client.settings, client.redis);
          try {
            const info = await mgr.add(o.id ?? job.name, absolute, o.cron ? { cron: o.cron, ...(o.tz ? { tz: o.tz } : {}) } : { every: o.every! });
            if (o.json) out(JSON.stringify(info));
            else out(`schedule ${info.id}: ${describeTiming(info)}, next ${info.next ? new Date(info.next).toISOString() : '-'}`);
          } finally {
            await mgr.close();
          }
        }, { writes: true });
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
  schedule
    .command('list')
    .description('schedules with their next run time and last run')
    .option('--json', 'print one JSON object on stdout')
    .action(async (o: { json?: boolean }) => {
      try {
        await withClient(async (client) => {
          const mgr = new ScheduleManager(client.settings, client.redis);
          try {
            const list = await mgr.list(client);
            if (o.json) {
              out(JSON.stringify({ schedules: list }));
              return;
            }
            out(
              table(
                ['id', 'job', 'when', 'next', 'last run', 'status'],
                list.map((s) => [s.id, s.name, describeTiming(s), s.next ? new Date(s.next).toISOString() : '-', s.lastRun?.runId ?? '-', s.lastRun?.status ?? '-']),
              ),
            );
          } finally {
            await mgr.close();
          }
        });
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
  schedule
    .command('remove <id>')
    .description('remove a schedule (runs already enqueued go on)')
    .action(async (id: string) => {
      try {
        await withClient(async (client) => {
          const mgr = new ScheduleManager(client.settings, client.redis);
          try {
            if (!(await mgr.remove(id))) throw new Error(`no schedule with id '${id}'`);
            err(`removed schedule ${id}`);
          } finally {
            await mgr.close();
          }
        });
      } catch (e) {
        setExit(fail(e, false));
      }
    });

  program
    .command('runs')
    .description('the run registry: id, fingerprint, status, rows, errors, start, duration, trigger')
    .option('--name <name>', 'only runs of this dataset')
    .option('--rebuild <sink-uri>', 'first restore records from the manifests under this sink (after Redis was wiped)')
    .option('--limit <n>', 'newest N runs', positiveInt('--limit'), 50)
    .option('--json', 'print one JSON object on stdout')
    .action(async (o: { name?: string; rebuild?: string; limit: number; json?: boolean }) => {
      try {
        await withClient(async (client) => {
          if (o.rebuild) {
            const n = await rebuildRegistry(o.rebuild, client.registry, o.name ? { name: o.name } : {});
            err(`restored ${n} run record(s) from ${o.rebuild}`);
          }
          const runs = (await client.registry.list(o.name ? 10_000 : o.limit)).filter((r) => !o.name || r.name === o.name).slice(0, o.limit);
          if (o.json) {
            out(JSON.stringify({ runs }));
            return;
          }
          out(
            table(
              ['run', 'name', 'fingerprint', 'status', 'rows', 'errors', 'started', 'seconds', 'trigger'],
              runs.map((r) => [
                r.runId,
                r.name,
                r.fingerprint,
                r.status,
                String(r.rows),
                String(r.errorRows),
                new Date(r.createdAt).toISOString(),
                r.finishedAt ? ((r.finishedAt - r.createdAt) / 1000).toFixed(1) : '-',
                r.trigger,
              ]),
            ),
          );
        });
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });

  program
    .command('dashboard')
    .description('serve Bull Board for the queues and a page of runs (status, rows, rows/s, errors, output) until SIGTERM/SIGINT')
    .option('--port <n>', `port to listen on (default ${DEFAULT_DASHBOARD_PORT})`, portNumber('--port'))
    .option('--host <host>', 'interface to listen on (default 127.0.0.1; 0.0.0.0 for every interface: the board can retry and delete jobs, so put it behind authentication)')
    .option('--read-only', 'Bull Board without retry, promote, clean, pause or delete actions')
    .action(async (o: { port?: number; host?: string; readOnly?: boolean }) => {
      const logger = createLogger({ bindings: { component: 'dashboard' } });
      const settings = settingsFromEnv();
      let dash: Awaited<ReturnType<typeof startDashboard>>;
      try {
        dash = await startDashboard({
          settings,
          port: o.port ?? DEFAULT_DASHBOARD_PORT,
          ...(o.host ? { host: o.host } : {}),
          readOnly: !!o.readOnly,
          onError: (e) => logger.error(`layertap dashboard: ${e.message}`),
        });
      } catch (e) {
        logger.error(`layertap: ${e instanceof Error ? e.message : String(e)}`);
        setExit(EXIT.failed);
        return;
      }
      logger.info({ url: dash.url }, `layertap dashboard: ready at ${dash.url}/runs (runs) and ${dash.url}/queues (Bull Board); redis ${redactUrl(settings.redisUrl)}, prefix ${settings.prefix}`);
      const sig = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      logger.info(`layertap dashboard: ${sig}: stopping`);
      await dash.close();
    });

  program
    .command('demo-data [dir]')
    .description('write the demo image set (6 scenes x 8 edits, deterministic) used by config/examples/demo.yaml')
    .action(async (dir: string | undefined) => {
      try {
        const r = await writeDemoImages(dir ?? 'data/demo');
        err(r.written ? `wrote ${r.images} demo images to ${r.dir}` : `demo images already in ${r.dir} (${r.images})`);
      } catch (e) {
        setExit(fail(e, false));
      }
    });

  return program;
}

/** CLI entry point. */
export async function main(argv: string[]): Promise<void> {
  let code: number = EXIT.ok;
  const program = buildProgram((c) => (code = c));
  program.exitOverride((e) => {
    process.exit(e.exitCode === 0 ? 0 : EXIT.usage);
  });
  await program.parseAsync(argv);
  // worker threads and sockets are closed by now; exit explicitly so nothing lingers
  process.exit(code);
}
