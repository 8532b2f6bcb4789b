import type { Redis } from 'ioredis';
import type { ShardSpec } from '../sources/types.js';
import { parseRunSpec } from './schemas.js';
import type { RunSpec, ShardTask } from './types.js';

/** Bytes of one shard's range in a run's range list: start, count and offset as float64. */
export const RANGE_BYTES = 24;

/**
 * Redis bytes measured on Redis 7 (docs/scale.md): a queued shard job with its share of the
 * queue's lists and events, the run's record, parent job and dedup key, and the result a finished
 * shard leaves in its parent job until the run job is removed.
 */
export const REDIS_COSTS = { shardJob: 1400, run: 4000, resultPerShard: 450 } as const;

/** Redis bytes a run takes right after enqueue, and at most while it goes (results of finished shards are kept in its parent job). */
export function runRedisBytes(shards: number, window: number, specBytes: number): { atEnqueue: number; peak: number } {
  const atEnqueue = REDIS_COSTS.run + specBytes + shards * RANGE_BYTES + Math.min(window, shards) * REDIS_COSTS.shardJob;
  return { atEnqueue, peak: atEnqueue + shards * REDIS_COSTS.resultPerShard };
}

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

  private key(runId: string, what: 'spec' | 'ranges' | 'planning' | 'owner' | 'cancel' | 'storage'): string {
    return `${this.prefix}:layertap:run:${runId}:${what}`;
  }

  /**
   * The set of runs holding a lease of this kind, which workers look through for holders that
   * died: `planning`, an enqueuer listing the source; `owner`, a `layertap run` process working
   * the run alone in its own queues.
   */
  private leaseSet(kind: LeaseKind): string {
    return kind === 'planning' ? `${this.prefix}:layertap:planning` : `${this.prefix}:layertap:owned`;
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

  /** Bytes of the run's range list in Redis (RANGE_BYTES per shard planned). */
  async rangesBytes(runId: string): Promise<number> {
    return this.redis.strlen(this.key(runId, 'ranges'));
  }

  /** Starts a run's range list afresh (a run id given again after a plan that did not finish). */
  async clearRanges(runId: string): Promise<void> {
    await this.redis.del(this.key(runId, 'ranges'));
  }

  /** Marks the run as held by a live process for `ttlMs` (see {@link leaseSet}); renew before it runs out. */
  async heartbeat(runId: string, ttlMs: number, kind: LeaseKind = 'planning'): Promise<void> {
    await this.redis.multi().set(this.key(runId, kind), String(Date.now()), 'PX', ttlMs).sadd(this.leaseSet(kind), runId).exec();
  }

  /** The lease's holder is done with it (the plan is complete, or the owner let the run go). */
  async release(runId: string, kind: LeaseKind = 'planning'): Promise<void> {
    // plain commands: a Redis out of memory refuses a transaction, not these
    await this.redis.del(this.key(runId, kind));
    await this.redis.srem(this.leaseSet(kind), runId);
  }

  /** Runs whose lease of this kind was not renewed in time: their holder stopped. */
  async abandoned(kind: LeaseKind = 'planning'): Promise<string[]> {
    const ids = await this.redis.smembers(this.leaseSet(kind));
    const out: string[] = [];
    for (const id of ids) if ((await this.redis.exists(this.key(id, kind))) === 0) out.push(id);
    return out;
  }

  /**
   * Notes that the run's storage does not answer: the outage's start (kept from the first note
   * until it is cleared) and the latest error. `first` is true for the note that began it.
   */
  async noteStorageOutage(runId: string, error: string): Promise<{ since: number; first: boolean }> {
    const key = this.key(runId, 'storage');
    const now = Date.now();
    const first = (await this.redis.hsetnx(key, 'since', String(now))) === 1;
    await this.redis.hset(key, 'error', error.slice(0, 500), 'at', String(now));
    await this.redis.expire(key, FINISHED_TTL_S);
    const since = first ? now : Number((await this.redis.hget(key, 'since')) ?? now);
    return { since, first };
  }

  /** The run's storage outage going on, or null. */
  async storageOutage(runId: string): Promise<{ since: number; error: string } | null> {
    const h = await this.redis.hgetall(this.key(runId, 'storage'));
    return h.since ? { since: Number(h.since), error: h.error ?? '' } : null;
  }

  /** The storage answered: the outage is over. Returns when it began, or null when there was none. */
  async clearStorageOutage(runId: string): Promise<number | null> {
    const key = this.key(runId, 'storage');
    const since = await this.redis.hget(key, 'since');
    if (since === null) return null;
    await this.redis.del(key);
    return Number(since);
  }

  async cancel(runId: string): Promise<void> {
    await this.redis.set(this.key(runId, 'cancel'), '1', 'EX', FINISHED_TTL_S);
  }

  async isCancelled(runId: string): Promise<boolean> {
    return (await this.redis.exists(this.key(runId, 'cancel'))) === 1;
  }

  /** The set of runs that ended failed because they could not be finalized, which sweeps try again. */
  private get unfinalizedKey(): string {
    return `${this.prefix}:layertap:unfinalized`;
  }

  async markUnfinalized(runId: string): Promise<void> {
    await this.redis.sadd(this.unfinalizedKey, runId);
  }

  async unfinalized(): Promise<string[]> {
    return this.redis.smembers(this.unfinalizedKey);
  }

  async finalized(runId: string): Promise<void> {
    await this.redis.srem(this.unfinalizedKey, runId);
  }

  /** Removes every key of a run that never was (its plan failed, or it joined an identical active run). */
  async forget(runId: string): Promise<void> {
    this.cache.delete(runId);
    await this.redis.del(
      this.key(runId, 'spec'),
      this.key(runId, 'ranges'),
      this.key(runId, 'planning'),
      this.key(runId, 'owner'),
      this.key(runId, 'cancel'),
      this.key(runId, 'storage'),
    );
    await this.redis.srem(this.leaseSet('planning'), runId);
    await this.redis.srem(this.leaseSet('owner'), runId);
  }

  /**
   * The run is over: its spec expires with its jobs, the cancel flag likewise, and what is no
   * longer needed (range list, leases) goes now. Plain commands, no MULTI: a Redis that is out
   * of memory refuses a transaction but still runs deletes and expiries.
   */
  async finished(runId: string): Promise<void> {
    this.cache.delete(runId);
    await this.redis.del(this.key(runId, 'ranges'), this.key(runId, 'planning'), this.key(runId, 'owner'), this.key(runId, 'storage'));
    await this.redis.srem(this.leaseSet('planning'), runId);
    await this.redis.srem(this.leaseSet('owner'), runId);
    await this.redis.expire(this.key(runId, 'spec'), FINISHED_TTL_S);
    await this.redis.expire(this.key(runId, 'cancel'), FINISHED_TTL_S);
  }
}

/** What a run's lease says its holder is doing (see {@link RunSpecStore.heartbeat}). */
export type LeaseKind = 'planning' | 'owner';
