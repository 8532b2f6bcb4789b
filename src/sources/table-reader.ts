import type { RawRow, RowColumns, TableColumn } from './table-cells.js';
import type { ShardSpec } from './types.js';

// the readers plan and check shards as every source does
export { checkShard, checkShardSize, planRows } from './shards.js';

/**
 * A table file read in pieces (record batches, row groups, lines) so that only the piece being
 * read is in memory. One per format; TableSource turns its rows into SourceRows.
 */
export interface TableReader {
  /** the columns, in file order */
  columns(): Promise<TableColumn[]>;
  /** total rows */
  count(): Promise<number>;
  /** shards of at most `shardSize` rows, in file order */
  plan(shardSize: number): AsyncIterable<ShardSpec>;
  /** the shard's rows, in order, with the values of the id and input columns */
  rows(shard: ShardSpec, columns: RowColumns): AsyncIterable<RawRow>;
  close(): Promise<void>;
}

/**
 * For pieces of `sizes` rows, the pieces that overlap rows [start, start + count) with the
 * row range to take from each: { piece, from, to } in piece-local rows, and the piece's first row.
 */
export function piecesFor(sizes: readonly number[], start: number, count: number): Array<{ piece: number; first: number; from: number; to: number }> {
  const out: Array<{ piece: number; first: number; from: number; to: number }> = [];
  const end = start + count;
  let first = 0;
  for (let piece = 0; piece < sizes.length && first < end; piece++) {
    const size = sizes[piece] as number;
    const last = first + size;
    if (last > start && size > 0) out.push({ piece, first, from: Math.max(0, start - first), to: Math.min(size, end - first) });
    first = last;
  }
  return out;
}
