import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { describeIssues } from '../config/index.js';
import { runRecordSchema } from './schemas.js';
import type { RunRecord } from './types.js';

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

  private get indexKey(): string {
    return `${this.prefix}:layertap:runs`;
  }

  async put(rec: RunRecord): Promise<void> {
    await this.redis.multi().set(this.key(rec.runId), JSON.stringify(rec)).zadd(this.indexKey, rec.createdAt, rec.runId).exec();
  }

  /** Forgets a run (one whose planning was given up before anything was queued). */
  async remove(runId: string): Promise<void> {
    await this.redis.multi().del(this.key(runId), this.progressKey(runId)).zrem(this.indexKey, runId).exec();
  }

  /** The run's record; null when there is none or it is not a valid record. */
  async get(runId: string): Promise<RunRecord | null> {
    const v = await this.redis.get(this.key(runId));
    return v ? this.parse(runId, v) : null;
  }

  /** Merge fields into a record (read-modify-write; only the finalizer and enqueue write records). */
  async update(runId: string, patch: Partial<RunRecord>): Promise<RunRecord | null> {
    const cur = await this.get(runId);
    if (!cur) return null;
    const next = { ...cur, ...patch };
    await this.put(next);
    return next;
  }

  /** Newest first; of the newest `limit` entries, those that are valid records. */
  async list(limit = 100): Promise<RunRecord[]> {
    const ids = await this.redis.zrevrange(this.indexKey, 0, limit - 1);
    if (ids.length === 0) return [];
    const vals = await this.redis.mget(ids.map((id) => this.key(id)));
    const out: RunRecord[] = [];
    vals.forEach((v, i) => {
      const rec = v === null ? null : this.parse(ids[i]!, v);
      if (rec) out.push(rec);
    });
    return out;
  }

  /** Live progress counters, bumped per batch (may count a retried batch twice; final figures come from the manifest). */
  async addProgress(runId: string, rows: number, errorRows: number): Promise<void> {
    await this.redis.multi().hincrby(this.progressKey(runId), 'rows', rows).hincrby(this.progressKey(runId), 'errorRows', errorRows).exec();
  }

  async progress(runId: string): Promise<{ rows: number; errorRows: number }> {
    const h = await this.redis.hgetall(this.progressKey(runId));
    return { rows: Number(h.rows ?? 0), errorRows: Number(h.errorRows ?? 0) };
  }
}
