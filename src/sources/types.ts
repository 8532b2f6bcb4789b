/** A JSON-serialisable description of one shard's rows, made when a run is planned. */
export interface ShardSpec {
  index: number;
  /** position of the shard's first row in the whole dataset */
  start: number;
  count: number;
  /** ids of the rows, when the source cannot derive them from start/count (e.g. file paths) */
  ids?: string[];
}

/** One input row as read by a source on the worker's main thread. */
export type SourceRow =
  | { id: string; kind: 'bytes'; bytes: Uint8Array }
  | { id: string; kind: 'tensor'; data: Float32Array }
  | { id: string; kind: 'error'; stage: string; message: string };

/** A dataset reader. Planning lists rows; reading streams a shard's rows in source order. */
export interface Source {
  readonly uri: string;
  /** 'images' (encoded image bytes, decoded in threads) or 'npy' (float tensors) */
  readonly type: 'images' | 'npy';
  /** per-row tensor shape for tensor sources, null for images */
  rowShape(): Promise<number[] | null>;
  /** total rows (for progress and planning) */
  count(): Promise<number>;
  /** split the dataset into shards of at most `shardSize` rows, in stable order */
  plan(shardSize: number): AsyncIterable<ShardSpec>;
  /** the rows of one shard, in order; a row that cannot be read becomes an `error` row */
  read(shard: ShardSpec): AsyncIterable<SourceRow>;
  close(): Promise<void>;
}
