import type { ResolvedJob } from '../config/resolved.js';
import type { BaseRun } from './incremental.js';
import type { ShardSpec } from '../sources/types.js';

/**
 * committed: every shard committed, `_SUCCESS` written. failed: some shard failed every attempt
 * (manifest only, no marker). partial: some shard failed but the job allows it
 * (`onShardFailure: partial`); the others are committed and `_PARTIAL` is written.
 */
export type RunStatus = 'queued' | 'running' | 'committed' | 'failed' | 'partial';

/** Statuses a run does not leave. */
export const FINAL_STATUSES: readonly RunStatus[] = ['committed', 'failed', 'partial'];

/** Where a shard's rows are in the dataset (what a manifest names for a failed shard). */
export interface ShardRange {
  index: number;
  start: number;
  count: number;
}

/** Data of a run (parent) job. */
export interface RunJobData {
  runId: string;
  job: ResolvedJob;
  createdAt: number;
  /** every shard's row range, so the manifest can say which rows a failed shard held */
  shards?: ShardRange[];
  /** how the run was started. @defaultValue 'manual' */
  trigger?: 'manual' | 'schedule';
  /** id of the committed run an incremental run carries unchanged rows from */
  baseRunId?: string | null;
}

/** Data of a shard (child) job. */
export interface ShardJobData {
  runId: string;
  job: ResolvedJob;
  shard: ShardSpec;
  /** incremental runs: the committed run whose vectors are carried over for unchanged rows */
  base?: BaseRun;
}

/** What a shard job returns when its files are committed. */
export interface ShardResult {
  index: number;
  rows: number;
  errorRows: number;
  /** full path/URI of the part file, or null when no row of the shard had features */
  file: string | null;
  errorsFile: string | null;
  bytes: number;
  seconds: number;
  backend: string;
  /** per tap column, the per-row shape written */
  shapes: Record<string, number[]>;
  layout: 'nhwc' | 'nchw';
  decodeMs: number;
  forwardMs: number;
  /** rows whose vectors were copied from the base run instead of computed */
  carried?: number;
  /** text: rows cut at maxLength */
  truncatedRows?: number;
  /** text: real tokens of the rows embedded (padding not counted) */
  tokens?: number;
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
}

/** Where a run's record is kept: the finalizer writes the run's outcome through it. */
export interface RunRecordStore {
  update(runId: string, patch: Partial<RunRecord>): Promise<unknown>;
}
