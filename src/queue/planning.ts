import { Job, type Queue } from 'bullmq';
import type { RunRegistry } from './run-registry.js';
import type { RunSpecStore } from './run-specs.js';
import type { RunJobData } from './types.js';

/** How long a run may be `planning` without its enqueuer renewing its heartbeat. */
export const PLANNING_TIMEOUT_MS = 60_000;

/** What a run whose enqueuer died while planning says. */
export const ABANDONED_PLAN = 'planning did not finish: the enqueuing process stopped before the plan was complete';

/**
 * Runs still `planning` whose enqueuer stopped renewing its heartbeat: marked failed, since a
 * plan cut short would commit with missing shards. One whose parent job exists was planned
 * completely (the enqueuer died just after queueing it) and becomes `queued`. Any worker or
 * `cancel` may call this; returns the ids marked failed.
 */
export async function failAbandonedPlans(specs: RunSpecStore, registry: RunRegistry, runs: Queue<RunJobData>): Promise<string[]> {
  const failed: string[] = [];
  for (const runId of await specs.abandoned()) {
    const rec = await registry.get(runId);
    if (rec?.status === 'planning') {
      if (await Job.fromId(runs, runId)) {
        const spec = await specs.get(runId).catch(() => null);
        await registry.update(runId, { status: 'queued', ...(spec ? { shards: spec.shards, totalRows: spec.totalRows } : {}) });
        await specs.planned(runId);
        continue;
      }
      await registry.update(runId, { status: 'failed', finishedAt: Date.now(), error: ABANDONED_PLAN });
      failed.push(runId);
    }
    await specs.finished(runId);
  }
  return failed;
}
