import type { RunStatus } from '../pipeline/types.js';

export type { RunStatus, ShardRange, RunJobData, RunSpec, ShardTask, ShardJobData, ShardResult, RunRecord } from '../pipeline/types.js';
export { FINAL_STATUSES } from '../pipeline/types.js';

/** Queue names (under the deployment's prefix). */
export const RUNS_QUEUE = 'runs';
export const SHARDS_QUEUE = 'shards';

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
  shards: { total: number; done: number; failed: number };
  output: { uri: string; manifest: string | null; files: string[]; errorFiles: string[] };
  fingerprint: string;
  backend: string | null;
  seconds: number;
  rowsPerSecond: number | null;
  failedShards: number[];
  error?: string;
}
