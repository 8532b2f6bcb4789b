import type { ResolvedJob } from '../config/resolved.js';
import type { DuplicateIds } from './duplicate-ids.js';
import type { BaseRun } from './incremental.js';
import type { ManifestShard } from '../sinks/manifest.js';
import type { ShardSpec } from '../sources/types.js';
import type { TapColumn } from '../types/features.js';

/**
 * planning: the enqueuer is still listing the source; no shard job exists yet. queued/running:
 * shard jobs exist. cancelling: `cancel` was asked for; pending shards are gone, active ones
 * finish, then the run ends cancelled. committed: every shard committed, `_SUCCESS` written.
 * failed: some shard failed every attempt (manifest only, no marker), planning never finished, or
 * the run could not be finalized. partial: some shard failed but the job allows it
 * (`onShardFailure: partial`); the others are committed and `_PARTIAL` is written. cancelled:
 * stopped by `cancel`; `_CANCELLED` is written. The moves between them are in `queue/lifecycle.ts`.
 */
export type RunStatus = 'planning' | 'queued' | 'running' | 'cancelling' | 'committed' | 'failed' | 'partial' | 'cancelled';

/** Statuses a run does not leave. */
export const FINAL_STATUSES: readonly RunStatus[] = ['committed', 'failed', 'partial', 'cancelled'];

/** Where a shard's rows are in the dataset (what a manifest names for a failed shard). */
export interface ShardRange {
  index: number;
  start: number;
  count: number;
}

/**
 * What every shard of a run shares, stored once per run (not in each shard job): the resolved
 * job, the base run of an incremental run, and the size of the plan.
 */
export interface RunSpec {
  runId: string;
  job: ResolvedJob;
  createdAt: number;
  /** how the run was started */
  trigger: 'manual' | 'schedule';
  /** number of shards planned */
  shards: number;
  totalRows: number;
  /** shard jobs that exist at once: each started shard adds the one this many places after it */
  window: number;
  /** the rows' ids are in plan files under `_plan/` (file sources), not derived from positions */
  idPlan: boolean;
  /** id of the committed run an incremental run carries unchanged rows from */
  baseRunId: string | null;
  /** incremental runs: the committed run whose vectors are carried over for unchanged rows */
  base?: BaseRun;
  /** the run's own queues when one process works it alone (see {@link RunRecord.owner}) */
  owner?: string;
}

/** Data of a run (parent) job: the run's spec is looked up by its id. */
export interface RunJobData {
  runId: string;
}

/** Data of a shard job as queued: its rows, and the run whose spec says what to do with them. */
export interface ShardTask {
  runId: string;
  index: number;
  start: number;
  count: number;
  /** byte offset of the shard's first row, for sources that seek to it (JSONL) */
  offset?: number;
}

/** A shard as processShard takes it: the task with the run's spec and the shard's ids filled in. */
export interface ShardJobData {
  runId: string;
  job: ResolvedJob;
  shard: ShardSpec;
  /** incremental runs: the committed run whose vectors are carried over for unchanged rows */
  base?: BaseRun;
}

/** What a shard job returns when its files are committed: what the manifest lists of it, and more. */
export interface ShardResult extends ManifestShard {
  /** the run was cancelled before this shard started: it wrote nothing and counts as cancelled, not failed */
  cancelled?: boolean;
  backend: string;
  /** per tap column, the per-row shape of the features (one token's for a ragged column) */
  shapes: Record<string, number[]>;
  layout: 'nhwc' | 'nchw';
  /** per tap column, its per-row shape and layout as the part file's field metadata has them */
  columns?: Record<string, TapColumn>;
  decodeMs: number;
  forwardMs: number;
  /** rows whose vectors were copied from the base run instead of computed */
  carried?: number;
  /** text: rows cut at maxLength */
  truncatedRows?: number;
  /** text: real tokens of the rows embedded (padding not counted) */
  tokens?: number;
  /** chunked text: source rows (documents) written; `rows` counts the part file's rows (chunks, or documents with reduce: mean) */
  documents?: number;
  /** chunked text: chunks cut (with reduce: mean, of the documents embedded here only) */
  chunks?: number;
  /** ids that more than one row of the shard carries, counted exactly; absent when none does */
  duplicateIds?: DuplicateIds;
}

/** The record of a run kept in Redis (and in the manifest once committed). */
export interface RunRecord {
  runId: string;
  name: string;
  fingerprint: string;
  status: RunStatus;
  trigger: 'manual' | 'schedule';
  createdAt: number;
  finishedAt?: number;
  shards: number;
  totalRows: number;
  rows: number;
  errorRows: number;
  /** chunked text, once the run has ended: source rows written (`rows` counts chunk rows) */
  documents?: number;
  /** ids that more than one row carries, once the run has ended; null when the run was too large to count them */
  duplicateIds?: DuplicateIds | null;
  failedShards: number[];
  /** run folder (path or URI) */
  outputUri: string;
  manifest?: string;
  files?: string[];
  errorFiles?: string[];
  backend?: string;
  error?: string;
  /** set on the record `enqueue` returns when an identical run was already active */
  deduplicated?: boolean;
  /** shards committed (set when the run ends) */
  doneShards?: number;
  /** shards that never ran because the run was cancelled (set when the run ends) */
  cancelledShards?: number;
  /**
   * the run's own queues (`runs.<owner>`, `shards.<owner>`) when one process works it alone
   * (`layertap run`); absent: the deployment's shared queues, where any worker takes its shards
   */
  owner?: string;
  /**
   * the run ended `failed` because it could not be finalized (its storage did not answer): its
   * shards are done, and `layertap finalize` (or a worker's sweep) finishes it once storage is back
   */
  unfinalized?: boolean;
}

/** The statuses a run ends with. */
export type EndedStatus = 'committed' | 'failed' | 'partial' | 'cancelled';

/** Where a run's record is kept: the finalizer ends the run through it, with the manifest's outcome. */
export interface RunRecordStore {
  end(runId: string, status: EndedStatus, patch: Partial<Omit<RunRecord, 'status'>>): Promise<unknown>;
}
