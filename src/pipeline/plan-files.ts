import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { planIdsKey } from '../storage/layout.js';
import type { Sink } from '../storage/types.js';
import type { ShardSpec } from '../sources/types.js';

/**
 * Shards per plan file. A file of 64 shards of 1000 paths is a few MB: few objects for a
 * billion rows, and a worker that reads one for its shard has the next 63 shards' ids at hand.
 */
export const SHARDS_PER_PLAN_FILE = 64;

/**
 * Writes the ids of a run's rows (file paths, object keys) as Arrow plan files under the run's
 * `_plan/`, one file per {@link SHARDS_PER_PLAN_FILE} consecutive shards, as the listing
 * streams: at most one file's ids are held.
 */
export class IdPlanWriter {
  private ids: string[] = [];
  private group = 0;
  files = 0;

  constructor(
    private readonly sink: Sink,
    private readonly prefix: string,
  ) {}

  /** Adds a shard's ids (shards in index order, each with ids). */
  async add(shard: ShardSpec): Promise<void> {
    if (!shard.ids) throw new Error(`shard ${shard.index} has no ids to plan`);
    const group = Math.floor(shard.index / SHARDS_PER_PLAN_FILE);
    if (group !== this.group) await this.flush();
    this.group = group;
    for (const id of shard.ids) this.ids.push(id);
  }

  /** Writes the ids held, if any. */
  async flush(): Promise<void> {
    if (this.ids.length === 0) return;
    await this.sink.put(planIdsKey(this.prefix, this.group), tableToIPC(tableFromArrays({ id: this.ids }), 'file'));
    this.files++;
    this.ids = [];
  }
}

/** Reads shards' ids from plan files, keeping the last file read (consecutive shards share it). */
export class IdPlanReader {
  private held: { key: string; ids: string[] } | null = null;

  constructor(private readonly sink: Sink) {}

  /**
   * The ids of a shard of a run whose shards hold `shardSize` rows each (the last may hold fewer).
   * Throws when the plan file is missing or shorter than the shard.
   */
  async ids(prefix: string, shard: Pick<ShardSpec, 'index' | 'start' | 'count'>, shardSize: number): Promise<string[]> {
    const group = Math.floor(shard.index / SHARDS_PER_PLAN_FILE);
    const key = planIdsKey(prefix, group);
    if (this.held?.key !== key) {
      const bytes = await this.sink.get(key);
      if (!bytes) throw new Error(`plan file ${this.sink.resolve(key)} is missing`);
      const column = tableFromIPC(bytes).getChild('id');
      if (!column) throw new Error(`plan file ${this.sink.resolve(key)} has no 'id' column`);
      this.held = { key, ids: column.toArray() as string[] };
    }
    const from = shard.start - group * SHARDS_PER_PLAN_FILE * shardSize;
    const ids = this.held.ids;
    if (from < 0 || from + shard.count > ids.length) {
      throw new Error(`plan file ${this.sink.resolve(key)} holds ${ids.length} ids; shard ${shard.index} needs rows ${from}..${from + shard.count - 1} of it`);
    }
    return ids.slice(from, from + shard.count);
  }
}
