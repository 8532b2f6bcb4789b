import type { ResolvedPreprocess, ResolvedTap } from '../config/resolved.js';
import type { TapColumn, TapLayout } from '../types/features.js';
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

/** A tap as run: the job's tap plus the column it wrote, as the part files' field metadata says. */
export interface ManifestTap extends ResolvedTap {
  /** per-row shape before flattening ([null, D] for a ragged token column), null when no shard produced features */
  shape?: Array<number | null> | null;
  /** `layertap.layout` of the column, null when no shard produced features */
  layout?: TapLayout | null;
}

/** What a committed shard says of the columns it wrote. */
export interface WrittenColumns {
  /** per tap column, its per-row shape and layout as the part file's schema has them */
  columns?: Record<string, TapColumn>;
  /** per tap column, the per-row shape of the features (one token's for a ragged column) */
  shapes: Record<string, number[]>;
  /** the runtime's native layout */
  layout: 'nhwc' | 'nchw';
}

/** A tap's manifest entry: the job's tap with the column that `written` (a shard that wrote a part file) made of it. */
export function manifestTap(tap: ResolvedTap, written: WrittenColumns | undefined): ManifestTap {
  const column = written?.columns?.[tap.as];
  if (column) return { ...tap, shape: column.shape, layout: column.layout };
  // a shard result without columns comes from a worker of an earlier version: its features' shapes
  return { ...tap, shape: written?.shapes[tap.as] ?? null, layout: written?.layout ?? null };
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
  /** text models: real tokens (no padding) of the rows this run embedded, and how many rows those were */
  tokens?: number;
  tokenizedRows?: number;
  /** chunked text (preprocess.chunk): source rows written, and the chunks cut of them (with reduce: mean, of the rows embedded by this run) */
  documents?: number;
  chunks?: number;
  /**
   * the part files, in shard order: names relative to the run folder (`part-00000.arrow`), so that
   * the folder can be moved; manifests written before that hold full paths/URIs (see {@link manifestFile})
   */
  files?: string[];
  errorFiles?: string[];
  /** committed shards; empty when they are in `shardsFile` */
  shards: ManifestShard[];
  /** `_manifest-shards.arrow` (relative to the run folder, or a full path/URI in older manifests), which holds the per-shard list of a large run instead of `shards` */
  shardsFile?: string;
  /** committed shards, when they are in `shardsFile` */
  shardCount?: number;
  /** shards the run was planned with */
  plannedShards?: number;
  /** shards that never ran because the run was cancelled */
  cancelledShards?: number;
  failedShards: ManifestFailedShard[];
  /** why a run ended without its shards: planning never finished, its process stopped, a cancel while planning */
  error?: string;
  /** the part files' Arrow schema */
  schema?: ManifestField[];
  /** ISO 8601 */
  createdAt: string;
  /** ISO 8601; when the manifest was written */
  committedAt?: string;
  finishedAt?: string;
  seconds: number;
}

/**
 * A file a manifest names, as a full path/URI: names relative to the run folder (what manifests
 * hold) are joined to `runUri`; full paths and URIs (older manifests) are kept as they are.
 */
export function manifestFile(runUri: string, file: string): string {
  return file.startsWith('/') || /^[a-z][a-z0-9+.-]*:\/\//i.test(file) ? file : `${runUri.replace(/\/+$/, '')}/${file}`;
}

/** A file of the run folder `runUri` by its name relative to the folder, as manifests record it. */
export function runRelative(runUri: string, file: string): string {
  const base = `${runUri.replace(/\/+$/, '')}/`;
  return file.startsWith(base) ? file.slice(base.length) : file;
}
