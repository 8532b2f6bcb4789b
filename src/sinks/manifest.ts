import type { ResolvedPreprocess, ResolvedTap } from '../config/resolved.js';
import type { ManifestField } from './arrow-schema.js';

/** Final state of a run as recorded in its manifest. */
export type ManifestStatus = 'committed' | 'partial' | 'failed' | 'cancelled';

/** One committed shard. */
export interface ManifestShard {
  index: number;
  rows: number;
  errorRows: number;
  /** full path/URI of the part file, null when no row of the shard had features */
  file: string | null;
  /** full path/URI of the errors file, null when every row was embedded */
  errorsFile: string | null;
  bytes: number;
  seconds: number;
  decodeMs?: number;
  forwardMs?: number;
}

/** A shard that failed all its attempts. */
export interface ManifestFailedShard {
  index: number;
  error: string;
}

/** A tap as run: the job's tap plus what the runtime produced. */
export interface ManifestTap extends ResolvedTap {
  /** per-row shape before flattening, null when no shard produced features */
  shape?: number[] | null;
  layout?: 'nhwc' | 'nchw' | null;
}

/** `_manifest.json`: what a run wrote and how. Written by the run's parent job before `_SUCCESS`. */
export interface RunManifest {
  /** layertap version that wrote the run */
  layertap?: string;
  runId: string;
  name: string;
  fingerprint: string;
  status: ManifestStatus;
  model: {
    uri: string;
    format: string;
    /** backend asked for in the job (auto, wasm, ...) */
    backend: string;
    /** backend actually used, null when nothing ran */
    runtime: string | null;
  };
  taps: ManifestTap[];
  preprocess: ResolvedPreprocess | null;
  source: { uri: string; type: string; extensions?: string[] };
  sink?: { uri: string; format: string };
  /** how the run was started */
  trigger?: 'manual' | 'schedule';
  /** incremental runs: the base run and how many rows were carried over vs computed */
  incremental?: { baseRunId: string | null; carriedRows: number; embeddedRows: number } | null;
  /** full path/URI of the run folder */
  output?: string;
  batchSize?: number;
  shardSize?: number;
  rows: number;
  errorRows: number;
  /** ids that more than one row carries (count: rows whose id an earlier row has); null: not counted, the run was too large */
  duplicateIds?: { count: number; examples: string[] } | null;
  /** text models: rows cut at preprocess.maxLength */
  truncatedRows?: number;
  /** full paths/URIs of the part files, in shard order */
  files?: string[];
  errorFiles?: string[];
  /** committed shards; empty when they are in `shardsFile` */
  shards: ManifestShard[];
  /** full path/URI of `_manifest-shards.arrow`, which holds the per-shard list of a large run instead of `shards` */
  shardsFile?: string;
  /** committed shards, when they are in `shardsFile` */
  shardCount?: number;
  /** shards the run was planned with */
  plannedShards?: number;
  failedShards: ManifestFailedShard[];
  /** the part files' Arrow schema */
  schema?: ManifestField[];
  /** ISO 8601 */
  createdAt: string;
  /** ISO 8601; when the manifest was written */
  committedAt?: string;
  finishedAt?: string;
  seconds: number;
}
