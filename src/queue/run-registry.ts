import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { describeIssues } from '../config/index.js';
import { runRecordSchema } from './schemas.js';
import type { RunRecord } from './types.js';

/** The record of a run that is being planned: nothing counted yet. */
export function planningRecord(run: Pick<RunRecord, 'runId' | 'name' | 'fingerprint' | 'trigger' | 'createdAt' | 'outputUri' | 'owner'>): RunRecord {
  const { runId, name, fingerprint, trigger, createdAt, outputUri, owner } = run;
  const counts = { shards: 0, totalRows: 0, rows: 0, errorRows: 0, failedShards: [] };
  return { runId, name, fingerprint, status: 'planning', trigger, createdAt, ...counts, outputUri, ...(owner ? { owner } : {}) };
}

/** A value under a run's key that is not a run record; it is skipped. */
export interface InvalidRunRecord {
  runId: string;
  /** one line naming each field at fault */
  problem: string;
}

/** Events of {@link RunRegistry}. */
export interface RunRegistryEvents {
  /** a record failed its schema (reported once per record and problem); without a listener, a process warning */
  invalid: [InvalidRunRecord];
}

/**
 * Run records in Redis: one JSON value per run and a time-ordered index. A record that is not
 * what the registry writes (anyone with access to Redis can write one) is skipped, never shown.
 */
export class RunRegistry extends EventEmitter<RunRegistryEvents> {
  /** records already reported, so a page reloaded every few seconds says it once */
  private readonly reported = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    super();
  }

  /** A stored value as a record, or null (reported) when it is not one. */
  private parse(runId: string, text: string): RunRecord | null {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.report(runId, `not JSON (${(err as Error).message})`);
      return null;
    }
    const r = runRecordSchema.safeParse(value, { reportInput: true });
    if (r.success) return r.data;
    this.report(runId, describeIssues(r.error));
    return null;
  }

  private report(runId: string, problem: string): void {
    const key = `${runId}\n${problem}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    if (this.listenerCount('invalid') > 0) this.emit('invalid', { runId, problem });
    else process.emitWarning(`run record ${runId} skipped: ${problem}`, { code: 'LAYERTAP_INVALID_RUN_RECORD' });
  }

  private key(runId: string): string {
    return `${this.prefix}:layertap:run:${runId}`;
  }

  private progressKey(runId: string): string {
    return `${this.prefix}:layertap:run:${runId}:progress`;
  }

  /** shards whose rows `progress` counts already (one small field per committed shard, dropped with the run) */
  private doneKey(runId: string): string {
    return `${this.prefix}:layertap:run:${runId}:progress:done`;
  }

  /** rows written so far by each shard attempt in progress, by shard index */
  private activeKey(runId: string): string {
    return `${this.prefix}:layertap:run:${runId}:progress:active`;
  }

  private get indexKey(): string {
    return `${this.prefix}:layertap:runs`;
  }

  async put(rec: RunRecord): Promise<void> {
    await this.redis.multi().set(this.key(rec.runId), JSON.stringify(rec)).zadd(this.indexKey, rec.createdAt, rec.runId).exec();
  }

  /** Forgets a run (one whose planning was given up before anything was queued). */
  async remove(runId: string): Promise<void> {
    await this.redis.del(this.key(runId), this.progressKey(runId), this.doneKey(runId), this.activeKey(runId));
    await this.redis.zrem(this.indexKey, runId);
  }

  /** The run's record; null when there is none or it is not a valid record. */
  async get(runId: string): Promise<RunRecord | null> {
    const v = await this.redis.get(this.key(runId));
    return v ? this.parse(runId, v) : null;
  }

  /**
   * Changes a record with `change` (given the record as stored; returning null leaves it as it
   * is), atomically: the record is written only if nobody wrote it in between, else read again
   * and `change` asked again. With `ttlS`, the record expires that many seconds later. Returns
   * the record as it is afterwards, and whether `change` changed it; null for an unknown run.
   */
  async mutate(runId: string, change: (cur: RunRecord) => RunRecord | null, ttlS?: number): Promise<{ record: RunRecord; changed: boolean } | null> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const text = await this.redis.get(this.key(runId));
      const cur = text === null ? null : this.parse(runId, text);
      if (!cur || text === null) return null;
      const next = change(cur);
      if (next === null) return { record: cur, changed: false };
      const written = await this.redis.eval(COMPARE_AND_SET, 1, this.key(runId), text, JSON.stringify(next), String(ttlS ?? 0));
      if (written === 1) return { record: next, changed: true };
    }
    throw new Error(`run ${runId}: its record kept changing under this writer; try again`);
  }

  /** Merge fields other than the status into a record (the status moves only through queue/lifecycle.ts). */
  async update(runId: string, patch: Partial<Omit<RunRecord, 'status'>>): Promise<RunRecord | null> {
    const r = await this.mutate(runId, (cur) => ({ ...cur, ...patch }));
    return r?.record ?? null;
  }

  /** Drops a run's live progress counters (its record holds the final figures). */
  async dropProgress(runId: string): Promise<void> {
    await this.redis.del(this.progressKey(runId), this.doneKey(runId), this.activeKey(runId));
  }

  /** Newest first; of the newest `limit` entries, those that are valid records. Entries whose record expired are dropped from the index. */
  async list(limit = 100): Promise<RunRecord[]> {
    const ids = await this.redis.zrevrange(this.indexKey, 0, limit - 1);
    if (ids.length === 0) return [];
    const vals = await this.redis.mget(ids.map((id) => this.key(id)));
    const out: RunRecord[] = [];
    const gone: string[] = [];
    vals.forEach((v, i) => {
      if (v === null) gone.push(ids[i]!);
      const rec = v === null ? null : this.parse(ids[i]!, v);
      if (rec) out.push(rec);
    });
    if (gone.length > 0) await this.redis.zrem(this.indexKey, ...gone);
    return out;
  }

  /**
   * Live progress of a shard attempt: the rows and error rows it has written so far (not an
   * increment). A new attempt of the shard starts again from 0, so a repeated batch is never
   * counted twice; only the rows of committed shards count as `rows` ({@link shardCommitted}).
   */
  async shardProgress(runId: string, index: number, rows: number, errorRows: number): Promise<void> {
    await this.redis.hset(this.activeKey(runId), String(index), `${rows} ${errorRows}`);
  }

  /** A shard attempt stopped without committing: its rows no longer count as in progress. */
  async shardStopped(runId: string, index: number): Promise<void> {
    await this.redis.hdel(this.activeKey(runId), String(index));
  }

  /** A shard committed: its rows count once, however many attempts of it commit. */
  async shardCommitted(runId: string, index: number, rows: number, errorRows: number): Promise<void> {
    await this.redis.eval(
      "if redis.call('HSETNX', KEYS[2], ARGV[1], 1) == 1 then redis.call('HINCRBY', KEYS[1], 'rows', ARGV[2]); redis.call('HINCRBY', KEYS[1], 'errorRows', ARGV[3]) end redis.call('HDEL', KEYS[3], ARGV[1]) return 0",
      3,
      this.progressKey(runId),
      this.doneKey(runId),
      this.activeKey(runId),
      String(index),
      String(rows),
      String(errorRows),
    );
  }

  /** Rows and error rows of the run's committed shards, and those written so far by shards in progress. */
  async progress(runId: string): Promise<{ rows: number; errorRows: number; activeRows: number; activeErrorRows: number }> {
    const [h, active] = await Promise.all([this.redis.hgetall(this.progressKey(runId)), this.redis.hvals(this.activeKey(runId))]);
    let activeRows = 0;
    let activeErrorRows = 0;
    for (const v of active) {
      const [r, e] = v.split(' ').map(Number);
      activeRows += r ?? 0;
      activeErrorRows += e ?? 0;
    }
    return { rows: Number(h.rows ?? 0), errorRows: Number(h.errorRows ?? 0), activeRows, activeErrorRows };
  }
}

/** KEYS[1] record; ARGV: the value read, the value to write, seconds to keep it (0: no expiry). */
const COMPARE_AND_SET = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) else redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') end
return 1`;

/** The newest committed run (by start time) of each dataset among `runs`, newest first. */
export function latestCommitted(runs: readonly RunRecord[]): RunRecord[] {
  const latest = new Map<string, RunRecord>();
  for (const r of runs) {
    if (r.status !== 'committed') continue;
    const seen = latest.get(r.name);
    if (!seen || r.createdAt > seen.createdAt || (r.createdAt === seen.createdAt && r.runId > seen.runId)) latest.set(r.name, r);
  }
  return [...latest.values()].sort((a, b) => b.createdAt - a.createdAt);
}
