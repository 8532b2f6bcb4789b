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
 * (its planned rows, plus size and modification time of each local file). Fed shard by shard as
 * the plan streams, so no list of every shard is held.
 */
export class SnapshotHasher {
  private readonly h = createHash('sha256');
  private readonly local: boolean;
  private started: Promise<void>;

  constructor(private readonly job: ResolvedJob) {
    this.h.update(canonicalJson(job));
    this.local = !/^[a-z][a-z0-9+.-]*:\/\//i.test(job.source.uri);
    this.started = this.local ? this.fileStamp() : Promise.resolve();
  }

  private async fileStamp(): Promise<void> {
    try {
      const s = await stat(this.job.source.uri);
      if (s.isFile()) this.h.update(`${s.size}:${s.mtimeMs}`);
    } catch {
      // the source is checked when the run is planned; nothing to add here
    }
  }

  async add(sh: ShardSpec): Promise<void> {
    await this.started;
    this.h.update(`${sh.index}:${sh.start}:${sh.count}\n`);
    for (const id of sh.ids ?? []) {
      this.h.update(id);
      if (this.local) {
        try {
          const s = await stat(join(this.job.source.uri, id));
          this.h.update(`:${s.size}:${s.mtimeMs}`);
        } catch {
          this.h.update(':missing');
        }
      }
      this.h.update('\n');
    }
  }

  async digest(): Promise<string> {
    await this.started;
    return this.h.digest('hex').slice(0, 32);
  }
}

/** The snapshot key of a job and its whole plan (see {@link SnapshotHasher}). */
export async function snapshotKey(job: ResolvedJob, shards: ShardSpec[]): Promise<string> {
  const h = new SnapshotHasher(job);
  for (const sh of shards) await h.add(sh);
  return h.digest();
}
