import { createReadStream } from 'node:fs';
import { checkShardSize } from './table-reader.js';
import type { ShardSpec } from './types.js';

/** One line of the file: its bytes (without the newline) and where it starts. */
export interface Line {
  offset: number;
  /** the line's bytes; empty when it is longer than the limit */
  bytes: Buffer;
  /** the line's length in bytes */
  length: number;
  /** longer than the limit: counted and skipped, never held in memory */
  over: boolean;
  /** whitespace only (JSONL skips such lines) */
  blank: boolean;
}

function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

/**
 * The file's lines from byte `start` (which must be a line start), read in 1 MiB chunks. A line
 * is held in memory up to `maxLineBytes`; past that its bytes are only counted (and looked at
 * for whether it is blank), so a line of any length costs at most that much memory. With
 * `keep: false` no line is held (its `bytes` are empty): what counting and planning need.
 */
export async function* lines(path: string, start: number, maxLineBytes: number, opts: { keep?: boolean } = {}): AsyncGenerator<Line> {
  // keep: false (counting and planning): a line's bytes are looked at as they pass, never held
  const keep = opts.keep ?? true;
  let pending: Buffer[] = [];
  let length = 0;
  let over = !keep;
  let overBlank = true;
  let lineStart = start;
  let pos = start;
  const finish = (): Line => {
    if (over) return { offset: lineStart, bytes: EMPTY, length, over: keep || length > maxLineBytes, blank: overBlank };
    const bytes = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    return { offset: lineStart, bytes, length, over: false, blank: isBlank(bytes) };
  };
  for await (const chunk of createReadStream(path, { start, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      const piece = chunk.subarray(from, nl >= 0 ? nl : chunk.length);
      if (!over && length + piece.length > maxLineBytes) {
        over = true;
        overBlank = pending.every(isBlank);
        pending = [];
      }
      if (over) {
        if (overBlank && !isBlank(piece)) overBlank = false;
      } else if (piece.length > 0) {
        pending.push(piece);
      }
      length += piece.length;
      if (nl < 0) break;
      yield finish();
      pending = [];
      length = 0;
      over = !keep;
      overBlank = true;
      lineStart = pos + nl + 1;
      from = nl + 1;
    }
    pos += chunk.length;
  }
  if (length > 0) yield finish();
}

const EMPTY = Buffer.alloc(0);

/** How many lines of a file `isRow` takes, read through without keeping any. */
export async function countLines(path: string, maxLineBytes: number, isRow: (line: Line) => boolean): Promise<number> {
  let n = 0;
  for await (const line of lines(path, 0, maxLineBytes, { keep: false })) if (isRow(line)) n++;
  return n;
}

/**
 * Shards of `shardSize` rows over the lines of a file that `isRow` takes, each with the byte
 * offset of its first row, so that reading a shard seeks straight to it; `done` is told how many
 * rows there are once the file has been read through.
 */
export async function* planLines(
  path: string,
  maxLineBytes: number,
  shardSize: number,
  isRow: (line: Line) => boolean,
  done: (rows: number) => void,
): AsyncGenerator<ShardSpec> {
  checkShardSize(shardSize);
  let row = 0;
  let index = 0;
  let current: ShardSpec | null = null;
  for await (const line of lines(path, 0, maxLineBytes, { keep: false })) {
    if (!isRow(line)) continue;
    current ??= { index, start: row, count: 0, offset: line.offset };
    current.count++;
    row++;
    if (current.count === shardSize) {
      yield current;
      current = null;
      index++;
    }
  }
  if (current) yield current;
  done(row);
}
