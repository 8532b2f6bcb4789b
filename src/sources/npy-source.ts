import { open } from 'node:fs/promises';
import path from 'node:path';
import { decodeElements, readFully, readNpyHeaderFrom } from './npy.js';
import type { NpyHeader } from './npy.js';
import type { ShardSpec, Source, SourceRow } from './types.js';

export interface NpySourceOptions {
  /** target bytes read from disk per read call (at least one row). @defaultValue 4 MiB */
  chunkBytes?: number;
}

/**
 * A .npy array of shape [N, ...]: each row along the first axis is one input, with id "0",
 * "1", ... A shard reads only its own byte range through a file handle, so arrays larger
 * than memory work. Every yielded row owns its own ArrayBuffer and may be transferred.
 */
export class NpySource implements Source {
  readonly uri: string;
  readonly type = 'npy' as const;
  private readonly chunkBytes: number;
  private header: Promise<NpyHeader> | null = null;

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
    return (await this.getHeader()).shape.slice(1);
  }

  /** Reads and checks the header. */
  async check(): Promise<void> {
    await this.getHeader();
  }

  /** Length of the first axis. */
  async count(): Promise<number> {
    return (await this.getHeader()).shape[0] as number;
  }

  /** Yields shards as row ranges ({index, start, count}); ids are derived from positions. */
  async *plan(shardSize: number): AsyncIterable<ShardSpec> {
    if (!Number.isInteger(shardSize) || shardSize < 1) {
      throw new Error(`shardSize must be a positive integer, got ${shardSize}`);
    }
    const n = await this.count();
    for (let start = 0, index = 0; start < n; start += shardSize, index++) {
      yield { index, start, count: Math.min(shardSize, n - start) };
    }
  }

  /** Streams the shard's rows in order, reading only its byte range in chunks. */
  async *read(shard: ShardSpec): AsyncIterable<SourceRow> {
    const header = await this.getHeader();
    const n = header.shape[0] as number;
    const { start, count } = shard;
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > n) {
      throw new Error(`shard ${shard.index} asks for rows ${start}..${start + count - 1} but ${this.uri} has ${n} rows`);
    }
    const rowLen = header.shape.slice(1).reduce((a, b) => a * b, 1);
    const rowBytes = rowLen * header.bytesPerElement;
    if (rowBytes === 0) {
      for (let i = 0; i < count; i++) yield { id: String(start + i), kind: 'tensor', data: new Float32Array(0) };
      return;
    }
    const rowsPerChunk = Math.max(1, Math.floor(this.chunkBytes / rowBytes));
    const fh = await open(this.uri, 'r');
    try {
      const chunk = new Uint8Array(Math.min(rowsPerChunk, count) * rowBytes);
      for (let done = 0; done < count; ) {
        const rows = Math.min(rowsPerChunk, count - done);
        const bytes = chunk.subarray(0, rows * rowBytes);
        await readFully(fh, bytes, header.dataOffset + (start + done) * rowBytes, this.uri);
        for (let r = 0; r < rows; r++) {
          // a fresh buffer per row: the consumer may transfer it to a thread, and the chunk is reused
          const data = new Float32Array(rowLen);
          decodeElements(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), header, data, 0);
          yield { id: String(start + done + r), kind: 'tensor', data };
        }
        done += rows;
      }
    } finally {
      await fh.close();
    }
  }

  /** Forgets the cached header (the file is only open while a shard is read). */
  async close(): Promise<void> {
    this.header = null;
  }

  private getHeader(): Promise<NpyHeader> {
    if (!this.header) {
      const loading = this.loadHeader();
      this.header = loading;
      // a failed load is not cached so a fixed file can be retried
      loading.catch(() => {
        if (this.header === loading) this.header = null;
      });
    }
    return this.header;
  }

  private async loadHeader(): Promise<NpyHeader> {
    const fh = await open(this.uri, 'r').catch((err: NodeJS.ErrnoException) => {
      throw new Error(
        err.code === 'ENOENT'
          ? `source.uri: no such file or directory: ${this.uri}`
          : `source.uri: cannot open ${this.uri}: ${err.message}`,
        { cause: err },
      );
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
