import { Command, InvalidArgumentError } from 'commander';
import { JobConfigError } from '../config/errors.js';
import { loadJobFile } from '../config/load.js';
import { defaultColumnName, resolveJob } from '../config/resolve.js';
import { listLayers } from '../models/index.js';
import { LayertapClient } from '../queue/client.js';
import { redactUrl, settingsFromEnv } from '../queue/connection.js';
import { redisAnswers } from '../queue/embedded-redis.js';
import { runJob } from '../queue/run.js';
import type { RunSummary } from '../queue/types.js';
import { LayertapWorker } from '../queue/worker.js';
import { VERSION } from '../version.js';
import { writeDemoImages } from './demo-data.js';
import { neighbourReport, readFeatureRows } from './neighbours.js';
import { ProgressDisplay } from './progress.js';

/** Exit codes: 0 done, 1 the work failed, 2 bad input (job file, arguments, model). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
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
        const rows = layers.map((l) => [l.name, l.className, JSON.stringify(l.outputShape), String(l.params)]);
        const head = ['name', 'class', 'output shape', 'params'];
        const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        const fmt = (r: string[]) => r.map((c, i) => (i === 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ');
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
    .option('--json', 'print one JSON summary on stdout')
    .action(async (file: string, o: { workers?: number; threads?: number; json?: boolean }) => {
      const progress = new ProgressDisplay(true);
      try {
        const summary = await runJob(file, {
          ...(o.workers ? { workers: o.workers } : {}),
          ...(o.threads ? { threads: o.threads } : {}),
          onProgress: (s) => progress.update(s),
          log: (l) => {
            if (!l.startsWith('layertap worker:')) err(l);
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
        setExit(summary.status === 'committed' ? EXIT.ok : EXIT.failed);
      } catch (e) {
        progress.stop();
        setExit(fail(e, !!o.json));
      }
    });

  program
    .command('enqueue <job-file>')
    .description('validate and enqueue a job; prints the run id (workers do the work)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (file: string, o: { json?: boolean }) => {
      try {
        const resolved = await resolveJob(await loadJobFile(file));
        const settings = settingsFromEnv();
        if (!(await redisAnswers(settings.redisUrl, 2000))) throw new Error(`Redis at ${redactUrl(settings.redisUrl)} does not answer; start it or set REDIS_URL`);
        const client = new LayertapClient(settings);
        try {
          const rec = await client.enqueue(resolved);
          if (o.json) out(JSON.stringify({ runId: rec.runId, status: rec.status, shards: rec.shards, rows: rec.totalRows, fingerprint: rec.fingerprint, output: { uri: rec.outputUri } }));
          else out(rec.runId);
          err(`enqueued run ${rec.runId}: ${rec.totalRows} rows in ${rec.shards} shard(s) -> ${rec.outputUri}`);
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
    .action(async (o: { concurrency?: number; threads?: number }) => {
      const settings = settingsFromEnv();
      if (!(await redisAnswers(settings.redisUrl, 2000))) {
        setExit(fail(new Error(`Redis at ${redactUrl(settings.redisUrl)} does not answer; start it or set REDIS_URL`), false));
        return;
      }
      const worker = new LayertapWorker({
        settings,
        ...(o.concurrency ? { concurrency: o.concurrency } : {}),
        ...(o.threads ? { threads: o.threads } : {}),
      });
      await worker.start();
      err(`layertap worker: ready (redis ${redactUrl(settings.redisUrl)}, prefix ${settings.prefix}, pid ${process.pid})`);
      await new Promise<void>((resolve) => {
        let closing = false;
        const stop = (sig: string) => {
          if (closing) return;
          closing = true;
          err(`layertap worker: ${sig}: finishing active shards`);
          worker.close().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      err('layertap worker: stopped');
      setExit(EXIT.ok);
    });

  program
    .command('status <run-id>')
    .description('state, shards done/failed, rows, errors, output location')
    .option('--json', 'print one JSON object on stdout')
    .action(async (runId: string, o: { json?: boolean }) => {
      const settings = settingsFromEnv();
      try {
        if (!(await redisAnswers(settings.redisUrl, 2000))) throw new Error(`Redis at ${redactUrl(settings.redisUrl)} does not answer; start it or set REDIS_URL`);
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
