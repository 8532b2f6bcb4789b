/**
 * The run-folder layout, named in this one place. Under a sink, a run is
 * `<name>/<fingerprint>/<runId>/` holding one part file per shard, an errors file per shard that
 * had bad rows, the row index of each part under `_index/`, the plan's row lists under `_plan/`,
 * `_manifest.json`, and last a marker (`_SUCCESS`, `_PARTIAL` or `_CANCELLED`). Names that start
 * with `_` are not data: readers glob `part-*`.
 */

/** The run's manifest: files, row counts, schema, model, taps, timings. */
export const MANIFEST = '_manifest.json';
/** Written last when every shard committed: readers trust only runs that have it. */
export const SUCCESS_MARKER = '_SUCCESS';
/** Written instead of `_SUCCESS` when some shards failed and the job allows a partial run. */
export const PARTIAL_MARKER = '_PARTIAL';

/** Written instead of `_SUCCESS` when the run was cancelled: the parts it has are not the whole dataset. */
export const CANCELLED_MARKER = '_CANCELLED';
/**
 * Beside a dataset's runs (`<name>/_LATEST`): `<fingerprint>/<runId>` of its newest committed
 * run, so a reader globs one run's parts, never several runs' at once.
 */
export const LATEST_POINTER = '_LATEST';

/** Key of a dataset's latest-run pointer: '<name>/_LATEST'. */
export function latestKey(name: string): string {
  return `${name}/${LATEST_POINTER}`;
}

/** The per-shard list of a manifest too large to keep inside it, beside `_manifest.json`. */
export const MANIFEST_SHARDS = '_manifest-shards.arrow';

/** Part file name of a shard: 'part-00000.arrow' (more digits past 99999). */
export function partName(index: number, ext = 'arrow'): string {
  return `part-${pad(index)}.${ext}`;
}

/** Errors file name of a shard: 'errors-00000.arrow'. */
export function errorsName(index: number): string {
  return `errors-${pad(index)}.arrow`;
}

/** Key prefix of a run under the sink: '<name>/<fingerprint>/<runId>'. */
export function runPrefix(name: string, fingerprint: string, runId: string): string {
  for (const [what, v] of [
    ['name', name],
    ['fingerprint', fingerprint],
    ['runId', runId],
  ] as const) {
    if (!v || v.includes('/') || v === '.' || v === '..') {
      throw new Error(`runPrefix: ${what} '${v}' must be a non-empty single path segment`);
    }
  }
  return `${name}/${fingerprint}/${runId}`;
}

function pad(index: number): string {
  if (!Number.isInteger(index) || index < 0) throw new Error(`shard index must be a non-negative integer, got ${index}`);
  return String(index).padStart(5, '0');
}

/**
 * Key of a plan file: the ids (file paths, object keys) of the rows of a group of consecutive
 * shards, written once at enqueue, so that shard jobs carry row ranges instead of row lists.
 */
export function planIdsKey(prefix: string, group: number): string {
  return `${prefix}/_plan/ids-${pad(group)}.arrow`;
}

/** Key of a shard's row index (id and content hash of each row of its part, in order). */
export function rowIndexKey(prefix: string, shard: number): string {
  return `${prefix}/_index/hashes-${pad(shard)}.arrow`;
}

/** The run a manifest key belongs to ('<name>/<fingerprint>/<runId>/_manifest.json'), or null for any other key. */
export function runOfManifestKey(key: string): { name: string; fingerprint: string; runId: string } | null {
  const parts = key.split('/');
  if (parts.length !== 4 || parts[3] !== MANIFEST || parts.slice(0, 3).some((p) => p === '')) return null;
  return { name: parts[0]!, fingerprint: parts[1]!, runId: parts[2]! };
}

/** The run id of a success marker key under '<name>/<fingerprint>/', or null for any other key. */
export function runOfSuccessKey(keyUnderFingerprint: string): string | null {
  const parts = keyUnderFingerprint.split('/');
  return parts.length === 2 && parts[1] === SUCCESS_MARKER && parts[0] !== '' ? parts[0]! : null;
}
