import type { Job } from 'bullmq';
import { createSink, runPrefix } from '../sinks/index.js';
import { VERSION } from '../version.js';
import type { RunRegistry } from './run-registry.js';
import type { RunJobData, ShardResult } from './types.js';

/** Shard index from a child job key such as 'layertap:shards:<runId>-12'. */
function shardIndexOf(jobKey: string): number {
  const m = /-(\d+)$/.exec(jobKey);
  return m ? Number(m[1]) : -1;
}

/** Marker files written after the manifest: readers trust a run folder by which one it has. */
export const SUCCESS_MARKER = '_SUCCESS';
export const PARTIAL_MARKER = '_PARTIAL';

/**
 * Finalize a run once every shard job has finished: clean leftovers of failed attempts, write
 * `_manifest.json`, then `_SUCCESS` only if every shard committed, or `_PARTIAL` when some
 * failed and the job allows a partial run. Safe to repeat.
 */
export async function finalizeRun(job: Job<RunJobData>, registry: RunRegistry): Promise<{ status: 'committed' | 'failed' | 'partial'; manifest: string }> {
  const { runId, job: spec, createdAt } = job.data;
  const values = (await job.getChildrenValues()) as Record<string, ShardResult>;
  const failures = await job.getIgnoredChildrenFailures();
  const shards = Object.values(values).sort((a, b) => a.index - b.index);
  const failedShards = Object.keys(failures).map(shardIndexOf).sort((a, b) => a - b);
  const planned = job.data.shards;
  if (planned && shards.length + failedShards.length !== planned.length) {
    // never mark a run done on an incomplete picture; the retry reads the children again
    throw new Error(`run ${runId}: ${shards.length} shard results and ${failedShards.length} failures, but the run has ${planned.length} shards`);
  }
  const prefix = runPrefix(spec.name, spec.fingerprint, runId);
  const sink = createSink(spec.sink);
  await sink.cleanup(prefix);

  const rows = shards.reduce((a, s) => a + s.rows, 0);
  const errorRows = shards.reduce((a, s) => a + s.errorRows, 0);
  // a 'partial' run must have something in it; when every shard failed it is simply failed
  const status = failedShards.length === 0 ? 'committed' : spec.onShardFailure === 'partial' && shards.length > 0 ? 'partial' : 'failed';
  const ranges = new Map((job.data.shards ?? []).map((r) => [r.index, r]));
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
    trigger: job.data.trigger ?? 'manual',
    incremental: spec.incremental
      ? { baseRunId: job.data.baseRunId ?? null, carriedRows: shards.reduce((a, s) => a + (s.carried ?? 0), 0), embeddedRows: shards.reduce((a, s) => a + s.rows - (s.carried ?? 0), 0) }
      : null,
    batchSize: spec.batchSize,
    shardSize: spec.shardSize,
    rows,
    errorRows,
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
    })),
    failedShards: failedShards.map((i) => {
      const key = Object.keys(failures).find((k) => shardIndexOf(k) === i) ?? '';
      const range = ranges.get(i);
      return { index: i, error: failures[key] ?? 'unknown', ...(range ? { start: range.start, rows: range.count } : {}) };
    }),
  };
  const manifestUri = await sink.put(`${prefix}/_manifest.json`, JSON.stringify(manifest, null, 2) + '\n');
  if (status === 'committed') await sink.put(`${prefix}/${SUCCESS_MARKER}`, '');
  if (status === 'partial') await sink.put(`${prefix}/${PARTIAL_MARKER}`, '');
  await registry.update(runId, {
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
