import type { Redis } from 'ioredis';
import { releaseSnapshot } from './dedup.js';
import type { RunRegistry } from './run-registry.js';
import type { RunSpecStore } from './run-specs.js';
import type { EndedStatus, RunRecordStore } from '../pipeline/types.js';
import { FINAL_STATUSES, type RunRecord, type RunStatus } from './types.js';

/**
 * The run lifecycle, in one table: the statuses a run may move to from each status. A run is
 * `planning` while its enqueuer lists the source, `queued` once its shard jobs exist, `running`
 * when a worker starts one, `cancelling` after `cancel` (active shards finish), and ends
 * `committed`, `partial`, `failed` or `cancelled`, which it never leaves.
 *
 * - planning -> failed: the plan could not be finished (its enqueuer died, Redis lost it).
 * - planning -> cancelling | cancelled: `cancel` while planning; the enqueuer stops at the next shard.
 * - queued | running -> failed: a shard failed for good, the run could not be finalized, or the
 *   `layertap run` process that worked it alone stopped.
 * - cancelling -> committed | partial | failed: the last shard had finished before the cancel,
 *   and the finalizer had written that outcome: the record follows the manifest.
 *
 * One move leaves a final status, and only with `refinalize`: a run that ended `failed` because it
 * could not be finalized (`unfinalized`: its shards are all done, its storage did not answer) may
 * move to the outcome its manifest then gets ({@link REFINALIZE_TO}).
 */
export const RUN_TRANSITIONS: { readonly [S in RunStatus]: readonly RunStatus[] } = {
  planning: ['queued', 'cancelling', 'cancelled', 'failed'],
  queued: ['running', 'cancelling', 'committed', 'partial', 'failed'],
  running: ['cancelling', 'committed', 'partial', 'failed'],
  cancelling: ['cancelled', 'committed', 'partial', 'failed'],
  committed: [],
  partial: [],
  failed: [],
  cancelled: [],
};

/** Where a run that could not be finalized may go when `layertap finalize` (or a sweep) finishes it. */
export const REFINALIZE_TO: readonly RunStatus[] = ['committed', 'partial', 'cancelled', 'failed'];

/** How long the record of an ended run is kept in Redis (`layertap runs --rebuild` reads it back from the manifests). */
export const ENDED_RECORD_TTL_S = 30 * 24 * 3600;

/** Whether a run in status `from` may move to `to`. */
export function canMove(from: RunStatus, to: RunStatus): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

/** What {@link RunLifecycle.move} did. */
export interface Moved {
  /** the record as it is now */
  record: RunRecord;
  /** false when the run was in a status it may not leave for `to` (it is left as it was) */
  moved: boolean;
}

/**
 * Moves runs between statuses, and only along {@link RUN_TRANSITIONS}: every status change of
 * a run goes through here. A move is atomic against other writers of the record. Ending a run
 * (a final status) also lets go of what it holds in Redis: its dedup claim (so an ended run never
 * absorbs a new one), its leases, range list and progress counters; its record and spec expire.
 */
export class RunLifecycle implements RunRecordStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly registry: RunRegistry,
    readonly specs: RunSpecStore,
  ) {}

  /**
   * Moves the run to `to` with `patch` merged into its record, if its status allows it; moving
   * to the status it has already changes nothing and counts as done (a repeated finalizer).
   * Returns null for an unknown run.
   */
  async move(runId: string, to: RunStatus, patch: Partial<Omit<RunRecord, 'status'>> = {}, opts: { refinalize?: boolean } = {}): Promise<Moved | null> {
    const final = FINAL_STATUSES.includes(to);
    let already = false;
    const r = await this.registry.mutate(
      runId,
      (cur) => {
        const again = opts.refinalize === true && cur.status === 'failed' && cur.unfinalized === true && REFINALIZE_TO.includes(to);
        already = cur.status === to && !again;
        if (already || !(again || canMove(cur.status, to))) return null;
        return {
          ...cur,
          ...patch,
          status: to,
          ...(again ? { unfinalized: patch.unfinalized ?? false } : {}),
          ...(final ? { finishedAt: patch.finishedAt ?? Date.now() } : {}),
        };
      },
      final ? ENDED_RECORD_TTL_S : undefined,
    );
    if (!r) return null;
    if (r.changed && (final || to === 'cancelling')) await releaseSnapshot(this.redis, this.prefix, runId);
    if (r.changed && final) await this.release(runId);
    return { record: r.record, moved: r.changed || already };
  }

  /** Ends a run with its manifest's outcome (what the finalizer calls; see {@link RunRecordStore}). */
  async end(runId: string, status: EndedStatus, patch: Partial<Omit<RunRecord, 'status'>>): Promise<Moved | null> {
    return this.move(runId, status, patch);
  }

  /** What an ended run held: its leases and range list go, its spec and cancel flag expire, its progress counters go. */
  private async release(runId: string): Promise<void> {
    await this.specs.finished(runId);
    await this.registry.dropProgress(runId);
  }
}

/** The run was cancelled before its enqueuer had queued it: nothing of it runs. */
export class RunCancelledError extends Error {
  override readonly name = 'RunCancelledError';
  constructor(
    readonly runId: string,
    /** the run's record, ended `cancelled` */
    readonly record: RunRecord | null,
  ) {
    super(`run ${runId} was cancelled while planning; nothing was queued`);
  }
}
