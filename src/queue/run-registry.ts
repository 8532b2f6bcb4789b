import type { Redis } from 'ioredis';
import type { RunRecord } from './types.js';

/** Run records in Redis: one JSON value per run and a time-ordered index. */
export class RunRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

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

  async get(runId: string): Promise<RunRecord | null> {
    const v = await this.redis.get(this.key(runId));
    return v ? (JSON.parse(v) as RunRecord) : null;
  }

  /** Merge fields into a record (read-modify-write; only the finalizer and enqueue write records). */
  async update(runId: string, patch: Partial<RunRecord>): Promise<RunRecord | null> {
    const cur = await this.get(runId);
    if (!cur) return null;
    const next = { ...cur, ...patch };
    await this.put(next);
    return next;
  }

  /** Newest first. */
  async list(limit = 100): Promise<RunRecord[]> {
    const ids = await this.redis.zrevrange(this.indexKey, 0, limit - 1);
    if (ids.length === 0) return [];
    const vals = await this.redis.mget(ids.map((id) => this.key(id)));
    return vals.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as RunRecord);
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
