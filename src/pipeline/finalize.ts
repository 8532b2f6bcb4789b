import { MANIFEST, PARTIAL_MARKER, runPrefix, SUCCESS_MARKER } from '../storage/layout.js';
import { createSink, defaultSinks, type SinkRegistry } from '../storage/registry.js';
import { VERSION } from '../version.js';
import type { RunJobData, RunRecordStore, ShardResult } from './types.js';

/** What became of a run's shards: the results of those that committed, the last error of those that failed. */
export interface ShardOutcomes {
  results: ShardResult[];
  failures: Array<{ index: number; error: string }>;
}

/**
 * Finalize a run once every shard has finished: clean leftovers of failed attempts, write
 * `_manifest.json`, then `_SUCCESS` only if every shard committed, or `_PARTIAL` when some
 * failed and the job allows a partial run. Safe to repeat.
 */
export async function finalizeRun(
  data: RunJobData,
  outcomes: ShardOutcomes,
  records: RunRecordStore,
  /** where the sink's scheme is found. @defaultValue the built-ins */
  sinks: SinkRegistry = defaultSinks(),
): Promise<{ status: 'committed' | 'failed' | 'partial'; manifest: string }> {
  const { runId, job: spec, createdAt } = data;
  const shards = [...outcomes.results].sort((a, b) => a.index - b.index);
  const failures = [...outcomes.failures].sort((a, b) => a.index - b.index);
  const failedShards = failures.map((f) => f.index);
  const planned = data.shards;
  if (planned && shards.length + failedShards.length !== planned.length) {
    // never mark a run done on an incomplete picture; the retry reads the shards again
    throw new Error(`run ${runId}: ${shards.length} shard results and ${failedShards.length} failures, but the run has ${planned.length} shards`);
  }
  const prefix = runPrefix(spec.name, spec.fingerprint, runId);
  const sink = await createSink(spec.sink, sinks);
  await sink.cleanup(prefix);

  const rows = shards.reduce((a, s) => a + s.rows, 0);
  const errorRows = shards.reduce((a, s) => a + s.errorRows, 0);
  // a 'partial' run must have something in it; when every shard failed it is simply failed
  const status = failedShards.length === 0 ? 'committed' : spec.onShardFailure === 'partial' && shards.length > 0 ? 'partial' : 'failed';
  const ranges = new Map((data.shards ?? []).map((r) => [r.index, r]));
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
    taps: spec.taps.map((t) => ({ ...t, shape: first?.shapes[t.as] ?? null, layout: first?.layout ?? null })),
    trigger: data.trigger ?? 'manual',
    incremental: spec.incremental
      ? { baseRunId: data.baseRunId ?? null, carriedRows: shards.reduce((a, s) => a + (s.carried ?? 0), 0), embeddedRows: shards.reduce((a, s) => a + s.rows - (s.carried ?? 0), 0) }
      : null,
    batchSize: spec.batchSize,
    shardSize: spec.shardSize,
    rows,
    errorRows,
    ...(spec.text ? { text: spec.text, truncatedRows: shards.reduce((a, s) => a + (s.truncatedRows ?? 0), 0) } : {}),
    files: shards.filter((s) => s.file).map((s) => s.file as string),
    errorFiles: shards.filter((s) => s.errorsFile).map((s) => s.errorsFile as string),
    shards: shards.map((s) => ({
      index: s.index,
      rows: s.rows,
      errorRows: s.errorRows,
      file: s.file,
      errorsFile: s.errorsFile,
      bytes: s.bytes,
      seconds: s.seconds,
      decodeMs: s.decodeMs,
      forwardMs: s.forwardMs,
      ...(s.carried !== undefined ? { carried: s.carried } : {}),
      ...(s.truncatedRows !== undefined ? { truncatedRows: s.truncatedRows, tokens: s.tokens } : {}),
    })),
    failedShards: failures.map(({ index, error }) => {
      const range = ranges.get(index);
      return { index, error, ...(range ? { start: range.start, rows: range.count } : {}) };
    }),
  };
  const manifestUri = await sink.put(`${prefix}/${MANIFEST}`, JSON.stringify(manifest, null, 2) + '\n');
  if (status === 'committed') await sink.put(`${prefix}/${SUCCESS_MARKER}`, '');
  if (status === 'partial') await sink.put(`${prefix}/${PARTIAL_MARKER}`, '');
  await records.update(runId, {
    status,
    finishedAt: committedAt,
    rows,
    errorRows,
    failedShards,
    manifest: manifestUri,
    files: manifest.files,
    errorFiles: manifest.errorFiles,
    ...(first ? { backend: first.backend } : {}),
    ...(failedShards.length ? { error: `${failedShards.length} shard(s) failed: ${manifest.failedShards.map((f) => `#${f.index}: ${f.error}`).join('; ').slice(0, 500)}` } : {}),
  });
  return { status, manifest: manifestUri };
}
