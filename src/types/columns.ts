/**
 * Columns of a part file besides `id` and the taps: source columns a job carries into its output
 * (`source.carry`) and, for a chunked text job, where each chunk is in its document.
 */

/** The Arrow type of a carried or chunk column: utf8, a 32- or 64-bit integer, a float64 or a bool. */
export type ExtraType = 'utf8' | 'int32' | 'int64' | 'float64' | 'bool';

/** One row's value in such a column (null when the source cell is null). */
export type ExtraValue = string | number | bigint | boolean | null;

/** A column written beside `id`: its name, type, and what it holds. */
export interface ExtraColumn {
  name: string;
  type: ExtraType;
  /** 'carry': copied from the source (`source.carry`); 'chunk': `chunk`, `start`, `end` of a chunked text job */
  kind: 'carry' | 'chunk';
}

/** The names of the columns a chunked text job writes for each chunk, in order. */
export const CHUNK_COLUMNS = ['chunk', 'start', 'end'] as const;
