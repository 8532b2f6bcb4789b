import type { JobsOptions, Queue } from 'bullmq';
import type { ResolvedJob } from '../config/resolved.js';
import { shardJobId, type ShardTask } from './types.js';

/** Completed shard jobs kept per deployment (the newest), whatever the number of shards. */
const KEEP_COMPLETED = 1000;

/** How long finished shard jobs that failed are kept for inspection. */
const KEEP_FAILED_S = 7 * 24 * 3600;

/** The options of a shard job: its id, retries, and its place under the run's parent job. */
export function shardJobOptions(job: ResolvedJob, task: ShardTask): JobsOptions {
  return {
    jobId: shardJobId(task.runId, task.index),
    attempts: job.attempts,
    backoff: { type: 'exponential', delay: 1000 },
    // a failed shard does not block the run: the finalizer records it and the run ends as failed
    ignoreDependencyOnFailure: true,
    // the parent keeps each result; the newest finished jobs are kept for the dashboard and
    // metrics, a bounded number, so that Redis does not grow with the dataset
    removeOnComplete: { count: KEEP_COMPLETED },
    removeOnFail: { age: KEEP_FAILED_S },
  };
}

/**
 * Adds a shard job under its run's parent job (in the queue `runsQueue`). Adding a shard that
 * exists already is a no-op (the id is fixed by the run and index), so a shard started twice adds
 * its successor once.
 */
export async function addShardJob(queue: Queue<ShardTask>, prefix: string, runsQueue: string, job: ResolvedJob, task: ShardTask): Promise<void> {
  await queue.add('shard', task, { ...shardJobOptions(job, task), parent: { id: task.runId, queue: `${prefix}:${runsQueue}` } });
}
