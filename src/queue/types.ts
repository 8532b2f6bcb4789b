import type { RunStatus } from '../pipeline/types.js';

export type { RunStatus, ShardRange, RunJobData, ShardJobData, ShardResult, RunRecord } from '../pipeline/types.js';
export { FINAL_STATUSES } from '../pipeline/types.js';

/** Queue names (under the deployment's prefix). */
export const RUNS_QUEUE = 'runs';
export const SHARDS_QUEUE = 'shards';

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
