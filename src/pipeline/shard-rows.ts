import type { SourceRow } from '../sources/types.js';
import type { ExtraValue } from '../types/columns.js';
import type { TapOutput } from '../types/features.js';
import type { RowStage } from '../types/row-stage.js';

/** What the stages of shard processing pass each other: rows named by their position in the shard. */

/** A source row the model embeds: encoded file bytes, a tensor or text. */
export type InputRow = Extract<SourceRow, { kind: 'bytes' | 'tensor' | 'text' }>;

/** A row that could not be embedded (a line of the errors file). */
export interface ErrorRow {
  /** position in the shard: the errors file lists rows in source order */
  pos: number;
  /** null when the row has no id of its own (a null id cell, a line that is not JSON) */
  id: string | null;
  stage: RowStage;
  message: string;
}

/** Rows with their features, in source order. */
export interface FeatureRows {
  /** each row's position in the shard */
  pos: number[];
  ids: string[];
  /** each row's content hash, for the row index */
  hashes: string[];
  /** one entry per tap column, `ids.length` rows each; empty when there are no rows */
  taps: Record<string, TapOutput>;
  /** per row, its values of the job's carried and chunk columns, in their order ([] each when it has none) */
  extra: ExtraValue[][];
}

/** What the part file's schema records about the runtime that made the features. */
export interface RuntimeInfo {
  backend: string;
  layout: 'nhwc' | 'nchw';
}

/** No rows. */
export function noRows(): FeatureRows {
  return { pos: [], ids: [], hashes: [], taps: {}, extra: [] };
}
