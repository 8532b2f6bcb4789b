import type { ResolvedJob } from '../config/resolved.js';
import type { FormatRegistry, PartFormatEntry } from '../sinks/formats.js';
import { readPartFile } from '../sinks/read-arrow.js';
import type { TableCommit, TableFormat, TableRun, TableSpec, StagedShard } from '../sinks/table-destination.js';
import { tableFromIPC } from 'apache-arrow';
import { partName, runPrefix } from '../storage/layout.js';
import type { Sink } from '../storage/types.js';

/** The table a job's sink names, for a format with a table destination; null for file formats. */
export function tableSpecOf(sink: ResolvedJob['sink']): TableSpec | null {
  if (sink.tableUri === undefined || sink.table === undefined) return null;
  return {
    uri: sink.tableUri,
    table: sink.table,
    ...(sink.index !== undefined ? { index: sink.index } : {}),
    ...(sink.endpoint !== undefined ? { endpoint: sink.endpoint } : {}),
    ...(sink.region !== undefined ? { region: sink.region } : {}),
    ...(sink.forcePathStyle !== undefined ? { forcePathStyle: sink.forcePathStyle } : {}),
  };
}

/**
 * Hands a committed run's staged part files to its table destination: the table is made equal
 * to the run's rows. `shards` are the committed shards (index, rows) in index order.
 */
export async function commitTable(
  format: PartFormatEntry & { table: TableFormat },
  formats: FormatRegistry,
  job: ResolvedJob,
  sink: Sink,
  prefix: string,
  runId: string,
  shards: ReadonlyArray<{ index: number; rows: number }>,
): Promise<TableCommit> {
  const spec = tableSpecOf(job.sink);
  if (spec === null) throw new Error(`run ${runId}: sink.format ${job.sink.format} writes a table, but the job names none (sink.table)`);
  const staged: StagedShard[] = shards
    .filter((s) => s.rows > 0)
    .map((s) => ({
      index: s.index,
      rows: s.rows,
      async *batches() {
        const key = `${prefix}/${partName(s.index, format.extension)}`;
        const bytes = await sink.get(key);
        if (bytes === null) throw new Error(`run ${runId}: the part file of shard ${s.index} (${sink.resolve(key)}) is missing`);
        yield* (await readPartFile(bytes, { name: key, formats })).batches;
      },
    }));
  const markerKey = `${job.name}/${TABLE_MARKER}`;
  const unchanged = await unchangedRows(sink, markerKey, job, spec.table, prefix);
  const destination = await format.table.open(spec);
  let commit: TableCommit;
  try {
    commit = await destination.commit({
      runId,
      fingerprint: job.fingerprint,
      rows: staged.reduce((a, s) => a + s.rows, 0),
      shards: staged,
      ...(unchanged ? { unchanged } : {}),
    });
  } finally {
    await destination.close();
  }
  if (commit.version !== null) {
    const marker: TableMarker = { table: spec.table, uri: spec.uri, runId, fingerprint: job.fingerprint, version: commit.version };
    await sink.put(markerKey, JSON.stringify(marker) + '\n');
  }
  return commit;
}

/**
 * Beside a dataset's runs: which run the table holds, at which version. The next run of the same
 * fingerprint writes only the rows whose content changed since, if the table is still at that
 * version.
 */
const TABLE_MARKER = '_TABLE.json';

interface TableMarker {
  table: string;
  uri: string;
  runId: string;
  fingerprint: string;
  version: number;
}

/** id -> content hash of every row of a run, from its row index files. */
async function rowHashes(sink: Sink, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of (await sink.list(`${prefix}/_index/`)).sort()) {
    const bytes = await sink.get(key);
    if (!bytes) continue;
    const t = tableFromIPC(bytes);
    const ids = t.getChild('id');
    const hashes = t.getChild('content_hash');
    if (!ids || !hashes) continue;
    for (let i = 0; i < t.numRows; i++) out.set(String(ids.get(i)), String(hashes.get(i)));
  }
  return out;
}

/**
 * The ids whose rows the table holds as they are: rows with the same id and content hash in
 * this run and in the run the table was last committed from, when that run had this fingerprint
 * (so the same content gives the same features). Null when the table's last run is not known.
 */
async function unchangedRows(sink: Sink, markerKey: string, job: ResolvedJob, table: string, prefix: string): Promise<TableRun['unchanged'] | null> {
  const bytes = await sink.get(markerKey);
  if (!bytes) return null;
  let marker: TableMarker;
  try {
    marker = JSON.parse(Buffer.from(bytes).toString('utf8')) as TableMarker;
  } catch {
    return null;
  }
  if (marker.table !== table || marker.uri !== job.sink.tableUri || marker.fingerprint !== job.fingerprint || typeof marker.version !== 'number') return null;
  const before = await rowHashes(sink, runPrefix(job.name, marker.fingerprint, marker.runId));
  if (before.size === 0) return null;
  const ids = new Set<string>();
  for (const [id, hash] of await rowHashes(sink, prefix)) if (before.get(id) === hash) ids.add(id);
  return { version: marker.version, ids };
}
