import { Job } from 'bullmq';
import { finalizeRun, type ShardOutcomes } from '../pipeline/finalize.js';
import type { SinkRegistry } from '../storage/registry.js';
import type { RunLifecycle } from './lifecycle.js';
import type { QueueSet } from './queues.js';
import { parseShardJobId, runQueues, type RunJobData, type RunRecord, type ShardResult } from './types.js';

/** How long a run may be `planning` without its enqueuer renewing its lease. */
export const PLANNING_TIMEOUT_MS = 60_000;

/** What a run whose enqueuer died while planning says. */
export const ABANDONED_PLAN = 'planning did not finish: the enqueuing process stopped before the plan was complete';

/** What a run whose `layertap run` process died says. */
export const ABANDONED_OWNER = 'the layertap run process working this run stopped before the run ended; run the job again';

/** The results and failures of a run job's children, as the finalizer takes them. */
export async function shardOutcomes(job: Job<RunJobData>): Promise<ShardOutcomes> {
  const values = (await job.getChildrenValues()) as Record<string, ShardResult>;
  const failures = await job.getIgnoredChildrenFailures();
  return {
    results: Object.values(values),
    // keys are '<prefix>:<shards queue>:<shard job id>'
    failures: Object.entries(failures).map(([key, error]) => ({
      index: parseShardJobId(key.slice(key.lastIndexOf(':') + 1))?.shard ?? -1,
      error: error || 'unknown',
    })),
  };
}

/**
 * Ends runs whose holder stopped renewing its lease. A run still `planning` whose enqueuer died
 * is failed (a plan cut short would commit with missing shards), or cancelled if `cancel` had
 * been asked for; one whose parent job exists was planned completely (the enqueuer died just
 * after queueing it) and becomes `queued`. A run whose `layertap run` process died is failed
 * with the shards it committed listed, and its own queues are removed. Each gets a manifest when
 * its spec is known. Any worker, `run`, `status` or `cancel` may call this; returns the ids ended.
 */
export async function failAbandonedPlans(lifecycle: RunLifecycle, queues: QueueSet, sinks: SinkRegistry): Promise<string[]> {
  const { registry, specs } = lifecycle;
  const ended: string[] = [];
  for (const runId of await specs.abandoned('planning')) {
    const rec = await registry.get(runId);
    if (rec?.status === 'planning' || rec?.status === 'cancelling') {
      const parent = await Job.fromId(queues.get(runQueues(rec.owner).runs), runId);
      if (parent) {
        const spec = await specs.get(runId).catch(() => null);
        await lifecycle.move(runId, 'queued', spec ? { shards: spec.shards, totalRows: spec.totalRows } : {});
        await specs.release(runId, 'planning');
        continue;
      }
      // the range list goes first: on a Redis that is out of memory, that frees room to end the run
      await specs.clearRanges(runId);
      const spec = await specs.get(runId).catch(() => null);
      const cancelled = rec.status === 'cancelling';
      if (spec) {
        await finalizeRun(spec, { results: [], failures: [] }, lifecycle, sinks, cancelled ? { cancelledWhilePlanning: true } : { failed: ABANDONED_PLAN });
      } else {
        await lifecycle.move(runId, cancelled ? 'cancelled' : 'failed', { error: cancelled ? 'cancelled while planning' : ABANDONED_PLAN });
      }
      ended.push(runId);
    }
    await specs.release(runId, 'planning');
  }
  for (const runId of await specs.abandoned('owner')) {
    const rec = await registry.get(runId);
    if (rec && (rec.status === 'queued' || rec.status === 'running' || rec.status === 'cancelling')) {
      const own = runQueues(rec.owner);
      const parent = await Job.fromId<RunJobData>(queues.get(own.runs), runId);
      const spec = await specs.get(runId).catch(() => null);
      if (spec) {
        const outcomes = parent ? await shardOutcomes(parent) : { results: [], failures: [] };
        await finalizeRun(spec, outcomes, lifecycle, sinks, { failed: ABANDONED_OWNER });
      } else {
        await lifecycle.move(runId, 'failed', { error: ABANDONED_OWNER });
      }
      ended.push(runId);
    }
    if (rec?.owner) {
      const own = runQueues(rec.owner);
      // shards first: removing a child can move its parent back to waiting
      await queues.drop(own.shards);
      await queues.drop(own.runs);
    }
    await specs.release(runId, 'owner');
  }
  return ended;
}

/** Why {@link finalizeAgain} could not finish a run. */
export class CannotFinalizeError extends Error {
  override readonly name = 'CannotFinalizeError';
}

/**
 * Finishes a run that ended `failed` because it could not be finalized: its shards' outcomes are
 * read from its parent job again and the finalizer writes the manifest and marker, moving the
 * run to that outcome. Throws {@link CannotFinalizeError} for a run that is not such a run (or
 * whose spec or parent job is gone), and the storage's error when it still does not answer.
 */
export async function finalizeAgain(lifecycle: RunLifecycle, queues: QueueSet, sinks: SinkRegistry, runId: string): Promise<RunRecord> {
  const { registry, specs } = lifecycle;
  const rec = await registry.get(runId);
  if (!rec) throw new CannotFinalizeError(`no run with id '${runId}'`);
  if (rec.status !== 'failed' || rec.unfinalized !== true) {
    throw new CannotFinalizeError(
      `run ${runId} is ${rec.status}${rec.status === 'failed' ? ' for another reason than finalizing' : ''}; only a run that could not be finalized is finalized again`,
    );
  }
  const spec = await specs.get(runId);
  const parent = await Job.fromId<RunJobData>(queues.get(runQueues(rec.owner).runs), runId);
  if (!spec || !parent) throw new CannotFinalizeError(`run ${runId}: its ${spec ? 'parent job' : 'spec'} is gone from Redis; it cannot be finalized any more`);
  const cancelled = await specs.isCancelled(runId);
  await finalizeRun(spec, await shardOutcomes(parent), { end: (id, status, patch) => lifecycle.move(id, status, patch, { refinalize: true }) }, sinks, {
    cancelled,
  });
  await specs.finalized(runId);
  // a `layertap run`'s own queues were kept for this; they go with the run now
  if (rec.owner) {
    const own = runQueues(rec.owner);
    await queues.drop(own.shards);
    await queues.drop(own.runs);
  }
  return (await registry.get(runId)) ?? rec;
}

/**
 * Tries again to finalize the runs that could not be (see {@link finalizeAgain}); one whose
 * storage still does not answer waits for the next sweep. Returns the ids finished.
 */
export async function finalizeUnfinalized(lifecycle: RunLifecycle, queues: QueueSet, sinks: SinkRegistry): Promise<string[]> {
  const done: string[] = [];
  for (const runId of await lifecycle.specs.unfinalized()) {
    try {
      await finalizeAgain(lifecycle, queues, sinks, runId);
      done.push(runId);
    } catch (err) {
      // gone, or finished by someone else: nothing left to try
      if (err instanceof CannotFinalizeError) await lifecycle.specs.finalized(runId);
    }
  }
  return done;
}
