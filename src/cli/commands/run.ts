import type { Command } from 'commander';
import type { RunSummary } from '../../queue/types.js';
import { WORKER_DEFAULTS } from '../../queue/worker-options.js';
import { ALLOW_EVICTION_HELP, err, examples, EXIT, fail, out, positiveInt, printSummary, type SetExit } from '../common.js';
import { callbackLogger } from '../../types/logger.js';
import type { DuplicateIds } from '../../pipeline/duplicate-ids.js';
import type { TableCommit } from '../../sinks/table-destination.js';

/**
 * A quick look at whether the features separate the input folders; only for small local runs,
 * on the run's first column if it holds one float32 vector per row (as the manifest says: a glob
 * tap's columns are named after the layers it matched, a token column is ragged).
 */
async function printNeighbours(s: RunSummary): Promise<void> {
  if (s.status !== 'committed' || s.rows > 2000 || s.output.uri.includes('://') || s.output.manifest === null) return;
  const { readFile } = await import('node:fs/promises');
  const manifest = JSON.parse(await readFile(s.output.manifest, 'utf8')) as { taps?: Array<{ as?: string; dtype?: string; layout?: string | null }> };
  const first = manifest.taps?.[0];
  if (!first?.as || first.dtype !== 'float32' || first.layout === 'tokens') return;
  const column = first.as;
  const { neighbourReport, readFolderRows } = await import('../folder-report.js');
  // rows of one folder have nothing to compare: their features are not read back
  const read = await readFolderRows(s.output.files, column);
  if (!read) return;
  const r = neighbourReport(column, read.ids, read.rows);
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

/**
 * The warning line for a run whose ids repeat, from its manifest (read with the job file's sink
 * settings, since the bucket may need them); null when none repeat or the manifest cannot be read.
 */
async function duplicateIdsWarningLine(s: RunSummary, file: string): Promise<string | null> {
  const { duplicateIdsWarning } = await import('../../pipeline/duplicate-ids.js');
  const found = (await readManifest(s, file))?.duplicateIds;
  return found && found.count > 0 ? `warning: ${duplicateIdsWarning(found)}` : null;
}

/** The run's manifest (read with the job file's sink settings, since the bucket may need them), or null when it cannot be read. */
async function readManifest(s: RunSummary, file: string): Promise<{ duplicateIds?: DuplicateIds | null; table?: TableCommit } | null> {
  if (s.output.manifest === null) return null;
  const [{ loadJobFile }, { createSink }, { MANIFEST }] = await Promise.all([
    import('../../config/load.js'),
    import('../../storage/registry.js'),
    import('../../storage/layout.js'),
  ]);
  try {
    const sink = await createSink({ ...(await loadJobFile(file)).sink, uri: s.output.uri });
    const bytes = await sink.get(MANIFEST);
    return bytes === null ? null : (JSON.parse(Buffer.from(bytes).toString('utf8')) as { duplicateIds?: DuplicateIds | null; table?: TableCommit });
  } catch {
    // the run ended as the summary says; a manifest that cannot be read back only costs the lines from it
    return null;
  }
}

/** What a table format's commit did, as a line of the summary. */
function tableLine(t: TableCommit): string {
  const index = t.indexes.map((i) => `${i.type} index on ${i.column}${i.error ? ` not built: ${i.error}` : ''}`).join('; ');
  return (
    `  table       ${t.table} in ${t.uri}: ${t.rows} rows (${t.inserted} inserted, ${t.updated} updated, ${t.deleted} deleted, ${t.unchanged} unchanged)` +
    `${t.version !== null ? `, version ${t.version}` : ''}${index ? `; ${index}` : ''}`
  );
}

/** `layertap run <job-file>`: enqueue a job and work it off in this process. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('run <job-file>')
    .description('enqueue a job and process it with an embedded worker until the run is committed')
    .addHelpText('after', examples('layertap run config/examples/demo.yaml --workers 4 --threads 2'))
    .option('--workers <n>', `shard jobs processed at once (default ${WORKER_DEFAULTS.concurrency})`, positiveInt('--workers'))
    .option('--threads <n>', 'model threads in the pool (default: cores)', positiveInt('--threads'))
    .option('--allow-eviction', ALLOW_EVICTION_HELP)
    .option('--json', 'print one JSON summary on stdout')
    .action(async (file: string, o: { workers?: number; threads?: number; allowEviction?: boolean; json?: boolean }) => {
      const [{ ProgressDisplay }, { runJob }] = await Promise.all([import('../progress.js'), import('../../queue/run.js')]);
      const progress = await ProgressDisplay.open(true);
      try {
        const summary = await runJob(file, {
          ...(o.workers ? { workers: o.workers } : {}),
          ...(o.threads ? { threads: o.threads } : {}),
          ...(o.allowEviction ? { settings: { allowEviction: true } } : {}),
          onProgress: (s) => progress.update(s),
          // the embedded worker's progress records are noise next to the progress bar; its warnings and errors are not
          logger: callbackLogger((msg, level, fields) => {
            // the run's duplicate ids get the one warning below, from the manifest
            if (fields.duplicateIds !== undefined) return;
            if (fields.worker === undefined || level === 'warn' || level === 'error') err(msg);
          }),
        });
        progress.stop();
        const warning = await duplicateIdsWarningLine(summary, file);
        if (warning !== null) err(warning);
        // a table format's commit (lancedb): in the JSON summary as `table`, and a line of the summary
        const table = (await readManifest(summary, file))?.table;
        if (o.json) out(JSON.stringify(table ? { ...summary, table } : summary));
        else {
          printSummary(summary);
          if (table) out(tableLine(table));
          await printNeighbours(summary);
        }
        setExit(summary.status === 'committed' ? EXIT.ok : summary.status === 'partial' ? EXIT.partial : EXIT.failed);
      } catch (e) {
        progress.stop();
        setExit(fail(e, !!o.json));
      }
    });
}
