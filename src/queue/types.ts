import type { RunStatus } from '../pipeline/types.js';

export type { RunStatus, ShardRange, RunJobData, RunSpec, ShardTask, ShardJobData, ShardResult, RunRecord } from '../pipeline/types.js';
export { FINAL_STATUSES } from '../pipeline/types.js';

/** Queue names (under the deployment's prefix). */
export const RUNS_QUEUE = 'runs';
export const SHARDS_QUEUE = 'shards';

/**
 * The queues of a run: the deployment's shared ones, or, for a run one process works alone
 * (`layertap run`), queues of its own, so that no other run's shards or schedule ticks reach it.
 */
export function runQueues(owner?: string): { runs: string; shards: string } {
  return owner ? { runs: `${RUNS_QUEUE}.${owner}`, shards: `${SHARDS_QUEUE}.${owner}` } : { runs: RUNS_QUEUE, shards: SHARDS_QUEUE };
}

/** The id of a run's shard job: `<runId>-<index>`, so that a shard is enqueued once whoever enqueues it. */
export function shardJobId(runId: string, index: number): string {
  return `${runId}-${index}`;
}

/** The run and shard of a shard job id, or null for an id of another form. */
export function parseShardJobId(jobId: string): { runId: string; shard: number } | null {
  const at = jobId.lastIndexOf('-');
  const shard = Number(jobId.slice(at + 1));
  if (at <= 0 || !Number.isInteger(shard) || shard < 0 || jobId.slice(at + 1) === '') return null;
  return { runId: jobId.slice(0, at), shard };
}

/** What `run --json` and `status --json` print. */
export interface RunSummary {
  runId: string;
  name: string;
  status: RunStatus;
  rows: number;
  errorRows: number;
  totalRows: number;
  /** chunked text (preprocess.chunk), once the run has ended: source rows written; `rows` counts the part files' rows */
  documents?: number;
  /** done: committed; failed: failed every attempt; cancelled: never ran because the run was cancelled */
  shards: { total: number; done: number; failed: number; cancelled: number };
  output: { uri: string; manifest: string | null; files: string[]; errorFiles: string[] };
  fingerprint: string;
  backend: string | null;
  seconds: number;
  rowsPerSecond: number | null;
  failedShards: number[];
  error?: string;
  /**
   * active shards whose worker is gone (killed, or its host lost): each goes back to the queue
   * once its lock expires and a worker's stalled check finds it (see docs/reliability.md)
   */
  lostShards?: Array<{ index: number; worker: string }>;
  /**
   * while the run goes: rows and error rows written so far by shards not yet committed (`rows` and
   * `errorRows` count committed shards only). A shard attempt that dies is counted here until the
   * shard starts again.
   */
  active?: { rows: number; errorRows: number };
  /** the run's storage does not answer: since when (ms since epoch), and the latest error; shards and finalizing wait for it */
  storageOutage?: { since: number; error: string };
}
