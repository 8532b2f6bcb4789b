import type { Redis } from 'ioredis';
import type { ShardSpec } from '../sources/types.js';
import { parseRunSpec } from './schemas.js';
import type { RunSpec, ShardTask } from './types.js';

/** Bytes of one shard's range in a run's range list: start, count and offset as float64. */
export const RANGE_BYTES = 24;

/** How long the keys of a finished run are kept (as its jobs are). */
const FINISHED_TTL_S = 7 * 24 * 3600;

/**
 * What a run keeps in Redis once, whatever its number of shards: its spec (the resolved job and
 * the base run), the packed row ranges of its shards (24 bytes each, so that shard jobs can be
 * created as the run goes), the enqueuer's heartbeat while it plans, and the cancel flag.
 * Every key starts with the deployment's prefix, so a hash-tagged prefix (`{layertap}`) puts
 * them all in one Redis Cluster slot.
 */
export class RunSpecStore {
  /** specs read by this process: a worker reads each run's spec once, not once per shard */
  private readonly cache = new Map<string, RunSpec>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(runId: string, what: 'spec' | 'ranges' | 'planning' | 'cancel'): string {
    return `${this.prefix}:layertap:run:${runId}:${what}`;
  }

  /** The set of runs being planned, which workers look through for enqueuers that died. */
  private get planningKey(): string {
    return `${this.prefix}:layertap:planning`;
  }

  async put(spec: RunSpec): Promise<void> {
    await this.redis.set(this.key(spec.runId, 'spec'), JSON.stringify(spec));
  }

  /** The run's spec, checked against its schema (throws InvalidJobDataError), or null when there is none. */
  async get(runId: string): Promise<RunSpec | null> {
    const hit = this.cache.get(runId);
    if (hit) return hit;
    const text = await this.redis.get(this.key(runId, 'spec'));
    if (text === null) return null;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    const spec = parseRunSpec(value);
    if (this.cache.size >= 16) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(runId, spec);
    return spec;
  }

  /** Appends shard ranges, in index order, to the run's range list. */
  async appendRanges(runId: string, shards: readonly ShardSpec[]): Promise<void> {
    if (shards.length === 0) return;
    const buf = Buffer.alloc(shards.length * RANGE_BYTES);
    shards.forEach((s, i) => {
      buf.writeDoubleLE(s.start, i * RANGE_BYTES);
      buf.writeDoubleLE(s.count, i * RANGE_BYTES + 8);
      buf.writeDoubleLE(s.offset ?? -1, i * RANGE_BYTES + 16);
    });
    await this.redis.append(this.key(runId, 'ranges'), buf);
  }

  /** The task of shard `index` of a run, from its range list, or null when the list has no such shard. */
  async task(runId: string, index: number): Promise<ShardTask | null> {
    const at = index * RANGE_BYTES;
    const buf = await this.redis.getrangeBuffer(this.key(runId, 'ranges'), at, at + RANGE_BYTES - 1);
    if (buf.length !== RANGE_BYTES) return null;
    const offset = buf.readDoubleLE(16);
    return { runId, index, start: buf.readDoubleLE(0), count: buf.readDoubleLE(8), ...(offset >= 0 ? { offset } : {}) };
  }

  /** Starts a run's range list afresh (a run id given again after a plan that did not finish). */
  async clearRanges(runId: string): Promise<void> {
    await this.redis.del(this.key(runId, 'ranges'));
  }

  /** Marks the run as being planned by a live enqueuer for `ttlMs`; renew before it runs out. */
  async heartbeat(runId: string, ttlMs: number): Promise<void> {
    await this.redis.multi().set(this.key(runId, 'planning'), String(Date.now()), 'PX', ttlMs).sadd(this.planningKey, runId).exec();
  }

  /** The plan is complete (or abandoned): the run leaves the planning set. */
  async planned(runId: string): Promise<void> {
    await this.redis.multi().del(this.key(runId, 'planning')).srem(this.planningKey, runId).exec();
  }

  /** Runs in the planning set whose enqueuer stopped renewing its heartbeat. */
  async abandoned(): Promise<string[]> {
    const ids = await this.redis.smembers(this.planningKey);
    const out: string[] = [];
    for (const id of ids) if ((await this.redis.exists(this.key(id, 'planning'))) === 0) out.push(id);
    return out;
  }

  async cancel(runId: string): Promise<void> {
    await this.redis.set(this.key(runId, 'cancel'), '1', 'EX', FINISHED_TTL_S);
  }

  async isCancelled(runId: string): Promise<boolean> {
    return (await this.redis.exists(this.key(runId, 'cancel'))) === 1;
  }

  /** The run is over: its keys expire with its jobs, and the range list, no longer needed, goes now. */
  async finished(runId: string): Promise<void> {
    this.cache.delete(runId);
    await this.redis
      .multi()
      .expire(this.key(runId, 'spec'), FINISHED_TTL_S)
      .del(this.key(runId, 'ranges'), this.key(runId, 'planning'))
      .srem(this.planningKey, runId)
      .exec();
  }
}
