import type { CarriedColumn } from '../config/resolved.js';
import type { ExtraValue } from '../types/columns.js';
import type { RowStage } from '../types/row-stage.js';
/** A JSON-serialisable description of one shard's rows, made when a run is planned. */
export interface ShardSpec {
  index: number;
  /** position of the shard's first row in the whole dataset */
  start: number;
  count: number;
  /** ids of the rows, when the source cannot derive them from start/count (e.g. file paths) */
  ids?: string[];
  /** byte offset of the shard's first row, for sources that can seek to it (JSONL) */
  offset?: number;
}

/** Kinds of dataset a Source reads: the names of a source registry ('images', 'npy', 'parquet', ...). */
export type SourceKind = string;

/** Table file formats: Arrow IPC (file or stream), Parquet, JSON Lines. */
export type TableFormat = 'arrow' | 'parquet' | 'jsonl';

/** One input row as read by a source on the worker's main thread. */
export type SourceRow =
  | { id: string; kind: 'bytes'; bytes: Uint8Array; carry?: ExtraValue[] }
  | { id: string; kind: 'tensor'; data: Float32Array; carry?: ExtraValue[] }
  /** a row of text, tokenized in a pool thread; `carry`: its values of the columns `source.carry` names, in that order */
  | { id: string; kind: 'text'; text: string; carry?: ExtraValue[] }
  /**
   * a row that cannot be embedded; `id` is null when the row has none of its own (a null id cell, a
   * line that is not JSON): its position in the source tells which row it is
   */
  | { id: string | null; kind: 'error'; stage: RowStage; message: string };

/**
 * What a source's rows give the model, as planning checks it against the model's input: tensors
 * of a shape, encoded images (null), tensors whose shape no row tells (`'tensor'`: a list column
 * that has no non-null value), or nothing at all (`'unknown'`: a JSONL file without a row, a
 * column that is null in every row). In the last two cases no row reaches the model, so planning
 * takes the model's own input instead.
 */
export type RowShape = number[] | null | 'tensor' | 'unknown';

/** How the reader will consume a shard's rows; sources may use it to read in matching chunks. */
export interface ReadHint {
  /**
   * Rows per batch. A tensor source reads this many rows into one buffer, so that a batch of
   * consecutive rows is one whole buffer and can be handed to a pool thread without a copy.
   */
  batchRows?: number;
  /** where a tensor source gets the buffers it reads rows into (the pool's recycled ones); default: new ones */
  allocate?: (bytes: number) => ArrayBuffer;
}

/** A dataset reader. Planning lists rows; reading streams a shard's rows in source order. */
export interface Source {
  readonly uri: string;
  /** its kind, as the source registry names it: 'images', 'npy', a table format, ... */
  readonly type: SourceKind;
  /** per-row tensor shape for tensor sources, null when rows are encoded images (an images folder or an image column); see {@link RowShape} */
  rowShape(): Promise<RowShape>;
  /** fails with a message naming the field and location when the dataset cannot be read (e.g. a missing bucket or column) */
  check(): Promise<void>;
  /**
   * sources that can copy columns into the output (`source.carry`): the columns their rows carry,
   * with the type each is written as; fails naming `source.carry[i]` for a column that is not there
   */
  carried?(): Promise<CarriedColumn[]>;
  /** total rows (for progress and planning) */
  count(): Promise<number>;
  /** split the dataset into shards of at most `shardSize` rows, in stable order */
  plan(shardSize: number): AsyncIterable<ShardSpec>;
  /**
   * the rows of one shard, in order; a row that cannot be read becomes an `error` row. Tensor
   * rows may be views of a buffer shared with neighbouring rows (never reused once yielded).
   */
  read(shard: ShardSpec, hint?: ReadHint): AsyncIterable<SourceRow>;
  close(): Promise<void>;
}
