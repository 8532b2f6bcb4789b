import { runOfManifestKey } from '../storage/layout.js';
import { createSink, defaultSinks, type SinkRegistry, type SinkSpec } from '../storage/registry.js';
import { parseManifest, type ManifestRecordFields } from '../sinks/manifest-schema.js';
import { manifestFile } from '../sinks/manifest.js';
import type { RunRegistry } from './run-registry.js';
import type { RunRecord } from './types.js';

/** The registry record a committed manifest describes. */
export function recordFromManifest(m: ManifestRecordFields, manifestUri: string): RunRecord {
  const createdAt = Date.parse(m.createdAt);
  const finished = Date.parse(m.finishedAt ?? m.committedAt ?? m.createdAt);
  const failed = m.failedShards.map((f) => f.index);
  const runUri = manifestUri.replace(/\/_manifest\.json$/, '');
  return {
    runId: m.runId,
    name: m.name,
    fingerprint: m.fingerprint,
    status: m.status,
    trigger: m.trigger ?? 'manual',
    createdAt,
    finishedAt: finished,
    shards: m.plannedShards ?? (m.shardCount ?? m.shards.length) + failed.length,
    totalRows: m.rows + m.errorRows,
    rows: m.rows,
    errorRows: m.errorRows,
    failedShards: failed,
    outputUri: runUri,
    manifest: manifestUri,
    // names relative to the run folder (or full paths, in older manifests)
    files: (m.files ?? m.shards.filter((s) => s.file).map((s) => s.file as string)).map((f) => manifestFile(runUri, f)),
    errorFiles: (m.errorFiles ?? m.shards.filter((s) => s.errorsFile).map((s) => s.errorsFile as string)).map((f) => manifestFile(runUri, f)),
    ...(m.model.runtime ? { backend: m.model.runtime } : {}),
  };
}

/** A manifest that `rebuildRegistry` did not restore, and why. */
export interface SkippedManifest {
  /** full path/URI of the manifest */
  uri: string;
  problem: string;
}

/** Options for {@link rebuildRegistry}. */
export interface RebuildOptions {
  /** only this dataset */
  name?: string;
  /** leave runs that already have a record alone. @defaultValue false */
  onlyMissing?: boolean;
  /** told about each manifest that is not restored (not JSON, fails the schema, or names another run). @defaultValue ignored */
  onSkip?: (skipped: SkippedManifest) => void;
  /** where the sink's scheme is found. @defaultValue the built-ins */
  sinks?: SinkRegistry;
}

/** A manifest's text checked against its schema and against the folder it is in (one naming another run would replace that run's record). */
function manifestOfFolder(
  text: string,
  folder: { runId: string; fingerprint: string; name: string },
): { manifest: ManifestRecordFields } | { problem: string } {
  const parsed = parseManifest(text);
  if ('problem' in parsed) return parsed;
  for (const field of ['runId', 'fingerprint', 'name'] as const) {
    const said = parsed.manifest[field];
    if (said !== folder[field]) return { problem: `${field}: ${JSON.stringify(said)} does not match the run folder ${JSON.stringify(folder[field])}` };
  }
  return parsed;
}

/**
 * Put back the records of every run that has a manifest under a sink (optionally one dataset):
 * Redis is not the only record of what was committed. A manifest that is damaged, fails the
 * manifest schema or does not describe the folder it is in is skipped (the folder stays for a
 * person to look at). Returns the number of runs restored.
 */
export async function rebuildRegistry(sinkSpec: string | SinkSpec, registry: RunRegistry, opts: RebuildOptions = {}): Promise<number> {
  const sink = await createSink(sinkSpec, opts.sinks ?? defaultSinks());
  const keys = (await sink.list(opts.name ? `${opts.name}/` : '')).filter((k) => runOfManifestKey(k) !== null);
  let restored = 0;
  for (const key of keys) {
    const { name, fingerprint, runId } = runOfManifestKey(key)!;
    if (opts.onlyMissing && (await registry.get(runId))) continue;
    const bytes = await sink.get(key);
    if (!bytes) continue;
    const checked = manifestOfFolder(Buffer.from(bytes).toString('utf8'), { runId, fingerprint, name });
    if ('problem' in checked) {
      opts.onSkip?.({ uri: sink.resolve(key), problem: checked.problem });
      continue;
    }
    await registry.put(recordFromManifest(checked.manifest, sink.resolve(key)));
    restored++;
  }
  return restored;
}
