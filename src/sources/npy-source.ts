import { open } from 'node:fs/promises';
import path from 'node:path';
import { decodeElements, HOST_LITTLE_ENDIAN, readFully, readNpyHeaderFrom } from './npy.js';
import type { NpyHeader } from './npy.js';
import { checkShard, checkShardSize, planRows } from './shards.js';
import type { ReadHint, ShardSpec, Source, SourceRow } from './types.js';
import { Lazy } from '../types/lazy.js';

export interface NpySourceOptions {
  /** target bytes read from disk per read call (at least one row). @defaultValue 4 MiB */
  chunkBytes?: number;
}

/**
 * A .npy array of shape [N, ...]: each row along the first axis is one input, with id "0",
 * "1", ... A shard reads only its own byte range through a file handle, so arrays larger
 * than memory work. Rows are read a chunk at a time into a buffer of their own (from
 * `hint.allocate`, else new), never reused by the source once yielded: the rows are
 * consecutive views of it, and with `hint.batchRows` a chunk is exactly one batch, which then
 * crosses to a pool thread whole, by transfer, with no copy.
 */
export class NpySource implements Source {
  readonly uri: string;
  readonly type = 'npy' as const;
  private readonly chunkBytes: number;
  private readonly header = new Lazy<NpyHeader>(() => this.loadHeader());

  constructor(file: string, options: NpySourceOptions = {}) {
    this.uri = path.resolve(file);
    const chunkBytes = options.chunkBytes ?? 4 * 1024 * 1024;
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1) {
      throw new Error(`NpySource chunkBytes must be a positive integer, got ${chunkBytes}`);
    }
    this.chunkBytes = chunkBytes;
  }

  /** Shape of one row: the array's shape without its first axis. */
  async rowShape(): Promise<number[]> {
    return (await this.header.get()).shape.slice(1);
  }

  /** Reads and checks the header. */
  async check(): Promise<void> {
    await this.header.get();
  }

  /** Length of the first axis. */
  async count(): Promise<number> {
    return (await this.header.get()).shape[0] as number;
  }

  /** Yields shards as row ranges ({index, start, count}); ids are derived from positions. */
  async *plan(shardSize: number): AsyncIterable<ShardSpec> {
    checkShardSize(shardSize);
    yield* planRows(await this.count(), shardSize);
  }

  /** Streams the shard's rows in order, reading only its byte range in chunks. */
  async *read(shard: ShardSpec, hint: ReadHint = {}): AsyncIterable<SourceRow> {
    const header = await this.header.get();
    const n = header.shape[0] as number;
    checkShard(shard, n, this.uri);
    const { start, count } = shard;
    const rowLen = header.shape.slice(1).reduce((a, b) => a * b, 1);
    const rowBytes = rowLen * header.bytesPerElement;
    if (rowBytes === 0) {
      for (let i = 0; i < count; i++) yield { id: String(start + i), kind: 'tensor', data: new Float32Array(0) };
      return;
    }
    const rowsPerChunk =
      hint.batchRows !== undefined && Number.isInteger(hint.batchRows) && hint.batchRows > 0
        ? hint.batchRows
        : Math.max(1, Math.floor(this.chunkBytes / rowBytes));
    // float32 in host byte order is read straight into the rows' buffer; other dtypes are read
    // into a reused byte buffer and converted
    const direct = header.dtype === 'float32' && header.littleEndian === HOST_LITTLE_ENDIAN;
    const fh = await open(this.uri, 'r');
    try {
      const raw = direct ? null : new Uint8Array(Math.min(rowsPerChunk, count) * rowBytes);
      for (let done = 0; done < count;) {
        const rows = Math.min(rowsPerChunk, count - done);
        const chunk = new Float32Array(hint.allocate ? hint.allocate(rows * rowLen * 4) : new ArrayBuffer(rows * rowLen * 4));
        const at = header.dataOffset + (start + done) * rowBytes;
        if (raw) {
          const bytes = raw.subarray(0, rows * rowBytes);
          await readFully(fh, bytes, at, this.uri);
          decodeElements(bytes, header, chunk, 0);
        } else {
          await readFully(fh, new Uint8Array(chunk.buffer), at, this.uri);
        }
        for (let r = 0; r < rows; r++) {
          yield { id: String(start + done + r), kind: 'tensor', data: chunk.subarray(r * rowLen, (r + 1) * rowLen) };
        }
        done += rows;
      }
    } finally {
      await fh.close();
    }
  }

  /** Forgets the cached header (the file is only open while a shard is read). */
  async close(): Promise<void> {
    this.header.reset();
  }

  private async loadHeader(): Promise<NpyHeader> {
    const fh = await open(this.uri, 'r').catch((err: NodeJS.ErrnoException) => {
      throw new Error(err.code === 'ENOENT' ? `source.uri: no such file or directory: ${this.uri}` : `source.uri: cannot open ${this.uri}: ${err.message}`, {
        cause: err,
      });
    });
    try {
      const header = await readNpyHeaderFrom(fh, this.uri);
      if (header.shape.length === 0) {
        throw new Error(`${this.uri}: the array is a scalar; layertap needs shape [rows, ...]`);
      }
      return header;
    } finally {
      await fh.close();
    }
  }
}
