import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedJob } from '../config/resolved.js';
import type { ShardSpec } from '../sources/types.js';

/** JSON with object keys sorted, so that two equal jobs give the same text whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * A key for "the same job over the same data": the whole resolved job (everything that decides
 * what is written and where: sink format and connection included), and a snapshot of the source
 * (its planned rows, plus size and modification time of each local file).
 */
export async function snapshotKey(job: ResolvedJob, shards: ShardSpec[]): Promise<string> {
  const h = createHash('sha256');
  h.update(canonicalJson(job));
  const local = !/^[a-z][a-z0-9+.-]*:\/\//i.test(job.source.uri);
  if (local) {
    try {
      const s = await stat(job.source.uri);
      if (s.isFile()) h.update(`${s.size}:${s.mtimeMs}`);
    } catch {
      // the source is checked when the run is planned; nothing to add here
    }
  }
  for (const sh of shards) {
    h.update(`${sh.index}:${sh.start}:${sh.count}\n`);
    for (const id of sh.ids ?? []) {
      h.update(id);
      if (local) {
        try {
          const s = await stat(join(job.source.uri, id));
          h.update(`:${s.size}:${s.mtimeMs}`);
        } catch {
          h.update(':missing');
        }
      }
      h.update('\n');
    }
  }
  return h.digest('hex').slice(0, 32);
}
