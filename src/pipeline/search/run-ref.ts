import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableFromIPC } from 'apache-arrow';
import { loadJobFile } from '../../config/load.js';
import type { RunManifest } from '../../sinks/manifest.js';
import { createSink, type SinkSpec } from '../../storage/registry.js';
import { isS3Uri, S3_CONNECTION_FIELDS, type S3ConnectionOptions } from '../../storage/s3-client.js';
import { MANIFEST, MANIFEST_SHARDS, PARTIAL_MARKER, SUCCESS_MARKER, runOfSuccessKey } from '../../storage/layout.js';
import { SearchInputError } from './errors.js';

/** A committed run, opened for reading its part files. */
export interface RunRef {
  /** the run folder: absolute path or s3:// URI */
  uri: string;
  /** the run folder as storage (with the connection settings it was opened with) */
  sink: SinkSpec;
  manifest: RunManifest;
  /** part files (keys in the run folder) with their row counts, in shard order */
  parts: Array<{ key: string; rows: number }>;
  /** tap columns that hold one vector per row (not ragged token columns), in the manifest's order */
  columns: string[];
  /** every tap column of the run */
  taps: string[];
}

/** Options for {@link openRun}. */
export interface OpenRunOptions {
  /** S3 connection settings for an s3:// run uri (a job file brings its own `sink:` ones). @defaultValue from the environment */
  connection?: S3ConnectionOptions;
}

const JOB_FILE = /\.(ya?ml|json)$/i;

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * A committed run from what a user names it by: its output uri as `layertap run` prints it (a
 * local folder or s3:// URI), or a job file, which stands for the newest committed run of its
 * dataset under its sink. Fails with a {@link SearchInputError} when there is no committed run.
 */
export async function openRun(arg: string, opts: OpenRunOptions = {}): Promise<RunRef> {
  if (!isS3Uri(arg) && JOB_FILE.test(arg) && (await isFile(arg))) return openNewestRun(arg);
  const uri = isS3Uri(arg) ? arg.replace(/\/+$/, '') : path.resolve(arg.startsWith('file://') ? fileURLToPath(arg) : arg);
  if (!isS3Uri(uri)) {
    const s = await stat(uri).catch(() => null);
    if (!s?.isDirectory()) throw new SearchInputError(`no run folder at ${uri} (give a run's output uri as 'layertap run' prints it, or its job file)`);
  }
  return openRunFolder({ uri, ...(opts.connection ?? {}) });
}

async function openNewestRun(jobFile: string): Promise<RunRef> {
  const job = await loadJobFile(jobFile);
  // where the run folders are: the sink's location and connection, not how it writes
  const spec: SinkSpec = { uri: job.sink.uri };
  for (const f of S3_CONNECTION_FIELDS) if (job.sink[f] !== undefined) Object.assign(spec, { [f]: job.sink[f] });
  const sink = await createSink(spec);
  const base = `${job.name}/`;
  const committed = (await sink.list(base))
    .map((k) => {
      const rest = k.slice(base.length);
      const fp = rest.split('/')[0] ?? '';
      const runId = runOfSuccessKey(rest.slice(fp.length + 1));
      return runId === null ? null : { fp, runId };
    })
    .filter((r): r is { fp: string; runId: string } => r !== null)
    // run ids start with their start time (UTC, to the second), so the newest sorts last
    .sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
  const newest = committed.at(-1);
  if (!newest) throw new SearchInputError(`no committed run of '${job.name}' under ${sink.resolve(base)} (run 'layertap run ${jobFile}' first)`);
  return openRunFolder({ ...spec, uri: sink.resolve(`${base}${newest.fp}/${newest.runId}`) });
}

async function openRunFolder(spec: SinkSpec): Promise<RunRef> {
  const sink = await createSink(spec);
  if (!(await sink.exists(SUCCESS_MARKER))) {
    const what = (await sink.exists(PARTIAL_MARKER))
      ? 'is a partial run (_PARTIAL: some shards failed), not a committed one'
      : (await sink.exists(MANIFEST))
        ? 'is not committed (it has no _SUCCESS)'
        : 'has no committed run (no _SUCCESS nor _manifest.json)';
    throw new SearchInputError(`${sink.uri} ${what}`);
  }
  const bytes = await sink.get(MANIFEST);
  if (!bytes) throw new SearchInputError(`${sink.uri} has no ${MANIFEST}`);
  let manifest: RunManifest;
  try {
    manifest = JSON.parse(Buffer.from(bytes).toString('utf8')) as RunManifest;
  } catch (err) {
    throw new SearchInputError(`${sink.resolve(MANIFEST)} is not JSON: ${(err as Error).message}`);
  }
  const parts: RunRef['parts'] = [];
  // a large run keeps its shard list in an Arrow file beside the manifest
  let shards: Array<{ file: string | null; rows: number }> = manifest.shards ?? [];
  if (manifest.shardsFile) {
    const list = await sink.get(MANIFEST_SHARDS);
    if (!list) throw new SearchInputError(`${sink.resolve(MANIFEST_SHARDS)} is missing`);
    const t = tableFromIPC(list);
    const file = t.getChild('file');
    const rows = t.getChild('rows');
    shards = Array.from({ length: t.numRows }, (_, i) => ({ file: (file?.get(i) as string | null) ?? null, rows: Number(rows?.get(i) ?? 0) }));
  }
  for (const s of shards) {
    // the part's name in this folder, however the manifest spelled its location (a run folder may have moved)
    if (s.file) parts.push({ key: s.file.split('/').pop()!, rows: s.rows });
  }
  // a table destination's run (LanceDB) holds its rows in the table, not in part files of the folder
  const table = (manifest as { table?: { uri?: string; table?: string } }).table;
  if (parts.length === 0 && manifest.rows > 0 && table !== undefined) {
    throw new SearchInputError(
      `run ${manifest.runId} wrote its ${manifest.rows} rows into the table '${table.table ?? '?'}' at ${table.uri ?? '?'}, not into part files: search it with the table's own search (README, "Into LanceDB")`,
    );
  }
  const taps = (manifest.taps ?? []).map((t) => t.as);
  const columns = (manifest.taps ?? []).filter((t) => t.layout !== 'tokens').map((t) => t.as);
  return { uri: sink.uri, sink: { ...spec, uri: sink.uri }, manifest, parts, columns, taps };
}

/** The tap column to search: `tap` when the run has it, else its first vector column. */
export function pickColumn(run: RunRef, tap?: string): string {
  if (tap === undefined) {
    const first = run.columns[0];
    if (first === undefined) throw new SearchInputError(`run ${run.manifest.runId} has no vector column to search (taps: ${run.taps.join(', ') || 'none'})`);
    return first;
  }
  if (!run.columns.includes(tap)) {
    const ragged = run.taps.includes(tap) ? ` ('${tap}' holds token vectors, not one vector per row)` : '';
    throw new SearchInputError(`unknown tap '${tap}'${ragged}; taps are: ${run.columns.join(', ') || 'none'}`, run.columns);
  }
  return tap;
}
