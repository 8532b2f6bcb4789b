import { runOfManifestKey } from '../storage/layout.js';
import { createSink, defaultSinks, type SinkRegistry, type SinkSpec } from '../storage/registry.js';
import type { RunManifest } from '../sinks/manifest.js';
import type { RunRegistry } from './run-registry.js';
import type { RunRecord } from './types.js';

/** The registry record a committed manifest describes. */
export function recordFromManifest(m: RunManifest, manifestUri: string): RunRecord {
  const createdAt = Date.parse(m.createdAt);
  const finished = Date.parse(m.finishedAt ?? m.committedAt ?? m.createdAt);
  const failed = m.failedShards.map((f) => f.index);
  return {
    runId: m.runId,
    name: m.name,
    fingerprint: m.fingerprint,
    status: m.status,
    trigger: m.trigger ?? 'manual',
    createdAt,
    finishedAt: finished,
    shards: m.shards.length + failed.length,
    totalRows: m.rows + m.errorRows,
    rows: m.rows,
    errorRows: m.errorRows,
    failedShards: failed,
    outputUri: manifestUri.replace(/\/_manifest\.json$/, ''),
    manifest: manifestUri,
    files: m.files ?? m.shards.filter((s) => s.file).map((s) => s.file as string),
    errorFiles: m.errorFiles ?? m.shards.filter((s) => s.errorsFile).map((s) => s.errorsFile as string),
    ...(m.model.runtime ? { backend: m.model.runtime } : {}),
  };
}

/**
 * Put back the records of every run that has a manifest under a sink (optionally one dataset):
 * Redis is not the only record of what was committed. Returns the number of runs restored.
 */
export async function rebuildRegistry(
  sinkSpec: string | SinkSpec,
  registry: RunRegistry,
  opts: { name?: string; onlyMissing?: boolean; sinks?: SinkRegistry } = {},
): Promise<number> {
  const sink = await createSink(sinkSpec, opts.sinks ?? defaultSinks());
  const keys = (await sink.list(opts.name ? `${opts.name}/` : '')).filter((k) => runOfManifestKey(k) !== null);
  let restored = 0;
  for (const key of keys) {
    const runId = runOfManifestKey(key)!.runId;
    if (opts.onlyMissing && (await registry.get(runId))) continue;
    const bytes = await sink.get(key);
    if (!bytes) continue;
    let m: RunManifest;
    try {
      m = JSON.parse(Buffer.from(bytes).toString('utf8')) as RunManifest;
    } catch {
      continue; // not ours, or damaged: the run folder is still there for a person to look at
    }
    await registry.put(recordFromManifest(m, sink.resolve(key)));
    restored++;
  }
  return restored;
}
