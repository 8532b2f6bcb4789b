import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { chunkRows } from './columns.js';
import { CANCELLED_MARKER, latestKey, MANIFEST, MANIFEST_SHARDS, PARTIAL_MARKER, runPrefix, SUCCESS_MARKER } from '../storage/layout.js';
import type { Sink } from '../storage/types.js';
import { createSink, defaultSinks, type SinkRegistry } from '../storage/registry.js';
import { manifestTap, runRelative, type ManifestShard } from '../sinks/manifest.js';
import { defaultFormats, type FormatRegistry } from '../sinks/formats.js';
import type { TableCommit } from '../sinks/table-destination.js';
import { VERSION } from '../version.js';
import { countDuplicateIds, type DuplicateIds } from './duplicate-ids.js';
import { commitTable } from './table-commit.js';
import type { EndedStatus, RunRecordStore, RunSpec, ShardRange, ShardResult } from './types.js';

/**
 * Above this many shards the manifest's per-shard list goes to an Arrow file beside it
 * (`_manifest-shards.arrow`), and the run record keeps no file list: at ~350 bytes of JSON per
 * shard, 20,000 shards make a manifest of about 7 MB, and a record that size would be read on
 * every `runs` listing.
 */
export const MANIFEST_INLINE_SHARDS = 20_000;

/** How a run ends when finalized (see {@link finalizeRun}). */
export interface FinalizeOptions {
  /** the row range of a shard, for the failed shards the manifest names. @defaultValue none */
  range?: (index: number) => Promise<ShardRange | null>;
  /** the run was cancelled: it gets `_CANCELLED` (unless every shard had committed already), and missing shards are expected */
  cancelled?: boolean;
  /** the run was cancelled before its plan was complete: `data.shards` counts the shards planned until then */
  cancelledWhilePlanning?: boolean;
  /**
   * the run cannot go on (its plan was never finished, the process that worked it stopped): it
   * ends `failed` with this reason, whatever shards it has. @defaultValue none
   */
  failed?: string;
  /** where the sink's format is found; a committed run of a table format goes into its table. @defaultValue the built-ins */
  formats?: FormatRegistry;
}

/** What became of a run's shards: the results of those that committed, the last error of those that failed. */
export interface ShardOutcomes {
  results: ShardResult[];
  failures: Array<{ index: number; error: string }>;
}

/**
 * Finalize a run once every shard has finished: clean leftovers of failed attempts, write
 * `_manifest.json`, then `_SUCCESS` only if every shard committed, or `_PARTIAL` when some
 * failed and the job allows a partial run, or `_CANCELLED`; then end the run in `records` with
 * the same outcome. Safe to repeat.
 */
export async function finalizeRun(
  data: RunSpec,
  outcomes: ShardOutcomes,
  records: RunRecordStore,
  /** where the sink's scheme is found. @defaultValue the built-ins */
  sinks: SinkRegistry = defaultSinks(),
  opts: FinalizeOptions = {},
): Promise<{ status: EndedStatus; manifest: string; duplicateIds: DuplicateIds | null }> {
  const { runId, job: spec, createdAt } = data;
  let failedReason = opts.failed ?? null;
  const whilePlanning = opts.cancelledWhilePlanning ?? false;
  const cancelled = (opts.cancelled ?? false) || whilePlanning;
  // a shard that never started because the run was cancelled answers as cancelled: not a result, not a failure
  const shards = outcomes.results.filter((r) => !r.cancelled).sort((a, b) => a.index - b.index);
  const failures = [...outcomes.failures].sort((a, b) => a.index - b.index);
  const failedShards = failures.map((f) => f.index);
  if (!cancelled && failedReason === null && outcomes.results.length + failedShards.length !== data.shards) {
    // never mark a run done on an incomplete picture; the retry reads the shards again
    throw new Error(`run ${runId}: ${shards.length} shard results and ${failedShards.length} failures, but the run has ${data.shards} shards`);
  }
  const cancelledShards = cancelled ? Math.max(0, data.shards - shards.length - failedShards.length) : 0;
  const prefix = runPrefix(spec.name, spec.fingerprint, runId);
  const sink = await createSink(spec.sink, sinks);
  await sink.cleanup(prefix);
  // the manifest names the run's files relative to its folder, so the folder can be moved
  const runUri = sink.resolve(prefix);
  const rel = (f: string) => runRelative(runUri, f);

  const rows = shards.reduce((a, s) => a + s.rows, 0);
  const errorRows = shards.reduce((a, s) => a + s.errorRows, 0);
  // null: the run is too large to count across shards
  const duplicateIds = await countDuplicateIds(sink, prefix, shards);
  // a table keyed by id cannot hold two rows of one id: such a run fails instead of committing
  const formats = opts.formats ?? defaultFormats();
  const format = formats.find(spec.sink.format);
  if (failedReason === null && !cancelled && format?.table !== undefined && duplicateIds !== null && duplicateIds.count > 0) {
    failedReason = `sink.format ${spec.sink.format}: ${duplicateIds.count} row(s) have the id of an earlier row (${duplicateIds.examples
      .slice(0, 3)
      .map((id) => `'${id}'`)
      .join(', ')}); a table keyed by id needs unique ids, so the table was not changed`;
  }
  // a 'partial' run must have something in it; when every shard failed it is simply failed. A
  // cancel that came after the last shard had committed stopped nothing: the run is complete
  const status: EndedStatus =
    failedReason !== null
      ? 'failed'
      : cancelledShards > 0 || whilePlanning
        ? 'cancelled'
        : failedShards.length === 0
          ? 'committed'
          : spec.onShardFailure === 'partial' && shards.length > 0
            ? 'partial'
            : 'failed';
  const ranges = new Map<number, ShardRange>();
  for (const f of failures) {
    const r = (await opts.range?.(f.index)) ?? null;
    if (r) ranges.set(f.index, r);
  }
  // a table destination gets the rows of a complete run only, before the run is marked committed
  let table: TableCommit | null = null;
  if (status === 'committed' && format?.table !== undefined) {
    table = await commitTable({ ...format, table: format.table }, formats, spec, sink, prefix, runId, shards);
  }
  const committedAt = Date.now();
  const first = shards.find((s) => s.file !== null);
  const manifest = {
    layertap: VERSION,
    runId,
    name: spec.name,
    status,
    fingerprint: spec.fingerprint,
    createdAt: new Date(createdAt).toISOString(),
    finishedAt: new Date(committedAt).toISOString(),
    seconds: (committedAt - createdAt) / 1000,
    source: spec.source,
    model: { ...spec.model, runtime: first?.backend ?? null },
    preprocess: spec.preprocess,
    taps: spec.taps.map((t) => manifestTap(t, first)),
    trigger: data.trigger,
    incremental: spec.incremental
      ? {
          baseRunId: data.baseRunId ?? null,
          carriedRows: shards.reduce((a, s) => a + (s.carried ?? 0), 0),
          embeddedRows: shards.reduce((a, s) => a + s.rows - (s.carried ?? 0), 0),
        }
      : null,
    batchSize: spec.batchSize,
    shardSize: spec.shardSize,
    rows,
    errorRows,
    duplicateIds,
    ...(spec.text
      ? {
          text: spec.text,
          truncatedRows: shards.reduce((a, s) => a + (s.truncatedRows ?? 0), 0),
          // real tokens of the rows embedded here (carried rows were not tokenized), and those rows
          tokens: shards.reduce((a, s) => a + (s.tokens ?? 0), 0),
          tokenizedRows: shards.reduce((a, s) => a + (s.tokens !== undefined ? s.rows - (s.carried ?? 0) : 0), 0),
        }
      : {}),
    ...(spec.text?.chunk
      ? {
          // source rows written and the chunks they were cut into; `rows` is the part files' rows
          documents: shards.reduce((a, s) => a + (s.documents ?? 0), 0),
          chunks: shards.reduce((a, s) => a + (s.chunks ?? 0), 0),
        }
      : {}),
    files: shards.filter((s) => s.file).map((s) => rel(s.file as string)),
    ...(table !== null ? { table } : {}),
    errorFiles: shards.filter((s) => s.errorsFile).map((s) => rel(s.errorsFile as string)),
    plannedShards: data.shards,
    cancelledShards,
    ...(failedReason !== null ? { error: failedReason } : whilePlanning ? { error: 'cancelled while planning' } : {}),
    shards: shards.map((s) => ({
      index: s.index,
      rows: s.rows,
      errorRows: s.errorRows,
      file: s.file === null ? null : rel(s.file),
      errorsFile: s.errorsFile === null ? null : rel(s.errorsFile),
      bytes: s.bytes,
      seconds: s.seconds,
      decodeMs: s.decodeMs,
      forwardMs: s.forwardMs,
      ...(s.carried !== undefined ? { carried: s.carried } : {}),
      ...(s.truncatedRows !== undefined ? { truncatedRows: s.truncatedRows, tokens: s.tokens } : {}),
      ...(s.documents !== undefined ? { documents: s.documents, chunks: s.chunks } : {}),
    })),
    failedShards: failures.map(({ index, error }) => {
      const range = ranges.get(index);
      return { index, error, ...(range ? { start: range.start, rows: range.count } : {}) };
    }),
  };
  const large = manifest.shards.length > MANIFEST_INLINE_SHARDS;
  let text: string;
  if (large) {
    const shardsFile = await sink.put(`${prefix}/${MANIFEST_SHARDS}`, tableToIPC(shardTable(manifest.shards), 'file'));
    text = JSON.stringify({ ...manifest, shards: [], shardsFile: rel(shardsFile), shardCount: manifest.shards.length });
  } else {
    text = JSON.stringify(manifest, null, 2);
  }
  const manifestUri = await sink.put(`${prefix}/${MANIFEST}`, text + '\n');
  const marker = { committed: SUCCESS_MARKER, partial: PARTIAL_MARKER, cancelled: CANCELLED_MARKER, failed: null }[status];
  if (marker) await sink.put(`${prefix}/${marker}`, '');
  if (status === 'committed') await pointLatest(sink, spec.name, spec.fingerprint, runId);
  await records.end(runId, status, {
    finishedAt: committedAt,
    rows,
    errorRows,
    // a row per chunk: the source rows, which `rows` does not count (with reduce: mean they are the rows)
    ...(chunkRows(spec) ? { documents: shards.reduce((a, s) => a + (s.documents ?? 0), 0) } : {}),
    duplicateIds,
    failedShards,
    doneShards: shards.length,
    cancelledShards,
    manifest: manifestUri,
    // a large run's file list is in its manifest, not copied into Redis
    files: large ? [] : shards.filter((s) => s.file).map((s) => s.file as string),
    errorFiles: large ? [] : shards.filter((s) => s.errorsFile).map((s) => s.errorsFile as string),
    ...(first ? { backend: first.backend } : {}),
    ...(failedReason !== null
      ? { error: failedReason }
      : status === 'cancelled'
        ? {
            error: whilePlanning
              ? `cancelled while planning (${data.shards} shard(s) planned)`
              : `cancelled: ${shards.length} of ${data.shards} shard(s) committed`,
          }
        : failedShards.length
          ? {
              error: `${failedShards.length} shard(s) failed: ${manifest.failedShards
                .map((f) => `#${f.index}: ${f.error}`)
                .join('; ')
                .slice(0, 500)}`,
            }
          : {}),
  });
  return { status, manifest: manifestUri, duplicateIds };
}

/** The per-shard list of a manifest as an Arrow table, one row per shard, in index order. */
function shardTable(rows: Array<ManifestShard & { carried?: number }>) {
  return tableFromArrays({
    index: Int32Array.from(rows, (r) => r.index),
    rows: Int32Array.from(rows, (r) => r.rows),
    errorRows: Int32Array.from(rows, (r) => r.errorRows),
    file: rows.map((r) => r.file),
    errorsFile: rows.map((r) => r.errorsFile),
    bytes: Float64Array.from(rows, (r) => r.bytes),
    seconds: Float64Array.from(rows, (r) => r.seconds),
    decodeMs: Float64Array.from(rows, (r) => r.decodeMs ?? 0),
    forwardMs: Float64Array.from(rows, (r) => r.forwardMs ?? 0),
    carried: Int32Array.from(rows, (r) => r.carried ?? 0),
  });
}

/**
 * Points `<name>/_LATEST` at this committed run, unless it names a newer one already (run ids
 * begin with their start time, so they sort by it): a run that commits after a later-started
 * one does not take the pointer back.
 */
async function pointLatest(sink: Sink, name: string, fingerprint: string, runId: string): Promise<void> {
  const key = latestKey(name);
  const current = await sink.get(key);
  const currentRun = current === null ? null : (Buffer.from(current).toString('utf8').trim().split('/')[1] ?? null);
  if (currentRun !== null && currentRun >= runId) return;
  await sink.put(key, `${fingerprint}/${runId}\n`);
}
