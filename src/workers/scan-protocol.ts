import type { SinkSpec } from '../storage/registry.js';
import type { LayoutInput } from './map-layout.js';

/**
 * Messages between the main thread and a scan thread, which reads one committed part file per
 * task and answers with what the task asks of it. Float32Array buffers are transferred.
 */

/** A part file: the run folder's storage and the file's key in it. */
export interface PartRef {
  /** the run folder (local path or s3:// URI) with its connection settings */
  sink: SinkSpec;
  key: string;
}

/** A cell of a carried column, as plain JSON. */
export type Cell = string | number | boolean | null;

interface TaskBase {
  part: PartRef;
  /** the column searched */
  tap: string;
  /** every tap column of the run: not carried */
  taps: string[];
}

/** Look up a row by id: its vector and carried cells, if the part has it. */
export interface FindTask extends TaskBase {
  kind: 'find';
  id: string;
}

/** The k rows nearest (by cosine) to each query. */
export interface NearestTask extends TaskBase {
  kind: 'nearest';
  /** queries × dim, each of length 1 */
  queries: Float32Array;
  k: number;
  /** per query, an id that is not a neighbour of it (the query row itself), or null */
  exclude: Array<string | null>;
}

/** Some rows of the part (by position) with their vectors and carried cells. */
export interface RowsTask extends TaskBase {
  kind: 'rows';
  /** positions within the part, ascending; null: every row */
  rows: Int32Array | null;
}

/** Lay out unit rows on a 2-D map with their neighbour graph (see `mapLayout`); `full` is transferred. */
export interface LayoutTask extends LayoutInput {
  kind: 'layout';
}

export type ScanTask = FindTask | NearestTask | RowsTask | LayoutTask;

export interface Hit {
  id: string;
  score: number;
  carried: Record<string, Cell>;
}

export type FindResult = { found: false; rows: number } | { found: true; rows: number; vector: Float32Array; carried: Record<string, Cell> };

export interface NearestResult {
  rows: number;
  /** per query, best first */
  hits: Hit[][];
}

export interface RowsResult {
  ids: string[];
  dim: number;
  /** ids.length × dim */
  data: Float32Array;
  carried: Array<Record<string, Cell>>;
}
