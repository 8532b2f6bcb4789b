import type { ResolvedJob } from '../config/resolved.js';
import type { FormatRegistry, PartFormatEntry } from '../sinks/formats.js';
import { readPartFile } from '../sinks/read-arrow.js';
import type { TableCommit, TableFormat, TableSpec, StagedShard } from '../sinks/table-destination.js';
import { partName } from '../storage/layout.js';
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
  const destination = await format.table.open(spec);
  try {
    return await destination.commit({ runId, fingerprint: job.fingerprint, rows: staged.reduce((a, s) => a + s.rows, 0), shards: staged });
  } finally {
    await destination.close();
  }
}
