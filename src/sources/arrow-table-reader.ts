import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { Message, RecordBatchReader, Table, tableFromIPC } from 'apache-arrow';
import type { Schema } from 'apache-arrow';
import { readFully } from './npy.js';
import { arrowColumn, arrowRows } from './table-cells.js';
import type { RawRow, RowColumns, TableColumn } from './table-cells.js';
import { checkShard, piecesFor, planRows } from './table-reader.js';
import type { TableReader } from './table-reader.js';
import type { ShardSpec } from './types.js';

const MAGIC = 'ARROW1';
const EOS = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** Where a message sits in the file: `bytes` from `offset`, prefix + metadata + body. */
interface MessageSpan {
  offset: number;
  bytes: number;
}

interface IpcIndex {
  /** true for the file format (footer), false for a stream */
  isFile: boolean;
  schema: Schema;
  /** the schema message as stored (prefix + metadata; it has no body); files may keep the schema only in the footer */
  schemaMessage: Uint8Array | null;
  batches: Array<MessageSpan & { rows: number; dictionaries: number }>;
  /** dictionary batches in file order; a record batch needs the first `dictionaries` of them */
  dictionaries: MessageSpan[];
}

/**
 * Reads an Arrow IPC file (Feather v2, `ARROW1` magic) or stream one record batch at a time. The
 * index is built from the message headers alone (no data is read), which gives each batch's
 * row count for planning; reading a shard loads only the batches it overlaps: from a file by
 * its footer (random access), from a stream as a tiny stream of schema + dictionaries + batch.
 */
export class ArrowTableReader implements TableReader {
  private index: Promise<IpcIndex> | null = null;

  constructor(private readonly file: string) {}

  async columns(): Promise<TableColumn[]> {
    return (await this.getIndex()).schema.fields.map(arrowColumn);
  }

  async count(): Promise<number> {
    return (await this.getIndex()).batches.reduce((a, b) => a + b.rows, 0);
  }

  async *plan(shardSize: number): AsyncIterable<ShardSpec> {
    yield* planRows(await this.count(), shardSize);
  }

  async *rows(shard: ShardSpec, columns: RowColumns): AsyncIterable<RawRow> {
    const index = await this.getIndex();
    checkShard(shard, await this.count(), this.file);
    const pieces = piecesFor(index.batches.map((b) => b.rows), shard.start, shard.count);
    const fh = await open(this.file, 'r');
    try {
      if (index.isFile) {
        const reader = await RecordBatchReader.from(fh);
        await reader.open();
        if (!reader.isFile() || reader.numRecordBatches !== index.batches.length) {
          throw new Error(`${this.file}: the footer lists ${reader.isFile() ? reader.numRecordBatches : 0} record batches but the file holds ${index.batches.length}`);
        }
        for (const p of pieces) {
          const batch = await reader.readRecordBatch(p.piece);
          if (!batch) throw new Error(`${this.file}: cannot read record batch ${p.piece}`);
          yield* arrowRows(new Table(batch), p.from, p.to, columns, p.first);
        }
        return;
      }
      const schemaMessage = index.schemaMessage as Uint8Array;
      for (const p of pieces) {
        const batch = index.batches[p.piece]!;
        const parts: Uint8Array[] = [schemaMessage];
        for (const d of index.dictionaries.slice(0, batch.dictionaries)) parts.push(await readSpan(fh, d, this.file));
        parts.push(await readSpan(fh, batch, this.file), EOS);
        yield* arrowRows(tableFromIPC(concat(parts)), p.from, p.to, columns, p.first);
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.index = null;
  }

  private getIndex(): Promise<IpcIndex> {
    this.index ??= readIndex(this.file);
    return this.index;
  }
}

async function readIndex(file: string): Promise<IpcIndex> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const head = new Uint8Array(Math.min(size, 8));
    await readFully(fh, head, 0, file);
    let pos = 0;
    let end = size;
    const isFile = ascii(head.subarray(0, 6)) === MAGIC;
    if (isFile) {
      // file format: messages between the 8-byte preamble and the footer
      if (size < 18) throw new Error(`${file}: Arrow IPC file is cut short (${size} bytes)`);
      const tail = new Uint8Array(10);
      await readFully(fh, tail, size - 10, file);
      if (ascii(tail.subarray(4)) !== MAGIC) throw new Error(`${file}: Arrow IPC file has no footer (the file is truncated or still being written)`);
      const footerLen = new DataView(tail.buffer).getInt32(0, true);
      pos = 8;
      end = size - 10 - footerLen;
    } else if (ascii(head.subarray(0, 4)) === 'FEA1') {
      throw new Error(`${file}: Feather v1 files are not supported; rewrite it as Arrow IPC (pyarrow.feather.write_feather(df, path, version=2))`);
    }
    let schema: Schema | null = null;
    let schemaMessage: Uint8Array | null = null;
    const batches: IpcIndex['batches'] = [];
    const dictionaries: MessageSpan[] = [];
    const prefix = new Uint8Array(8);
    while (pos + 4 <= end) {
      const n = Math.min(8, end - pos);
      await readFully(fh, prefix.subarray(0, n), pos, file);
      const view = new DataView(prefix.buffer);
      let metaLen = view.getInt32(0, true);
      let prefixLen = 4;
      if (metaLen === -1) {
        if (n < 8) break;
        metaLen = view.getInt32(4, true);
        prefixLen = 8;
      }
      if (metaLen === 0) break; // end-of-stream marker
      if (metaLen < 0 || pos + prefixLen + metaLen > end) throw new Error(`${file}: not an Arrow IPC file or stream (bad message at byte ${pos})`);
      const meta = new Uint8Array(metaLen);
      await readFully(fh, meta, pos + prefixLen, file);
      let msg: Message;
      try {
        msg = Message.decode(meta);
      } catch (err) {
        throw new Error(`${file}: not an Arrow IPC file or stream (unreadable message at byte ${pos}: ${(err as Error).message})`, { cause: err });
      }
      const bytes = prefixLen + metaLen + Number(msg.bodyLength);
      if (msg.isSchema()) {
        if (schema) throw new Error(`${file}: Arrow IPC data with two schemas (concatenated streams?)`);
        schema = msg.header();
        schemaMessage = new Uint8Array(prefixLen + metaLen);
        schemaMessage.set(prefix.subarray(0, prefixLen), 0);
        schemaMessage.set(meta, prefixLen);
      } else if (msg.isRecordBatch()) {
        batches.push({ offset: pos, bytes, rows: Number(msg.header().length), dictionaries: dictionaries.length });
      } else if (msg.isDictionaryBatch()) {
        dictionaries.push({ offset: pos, bytes });
      }
      pos += bytes;
    }
    if (!schema && isFile) {
      // Arrow JS (and so layertap's own parts) keep a file's schema only in its footer
      const reader = await RecordBatchReader.from(fh);
      await reader.open();
      schema = reader.schema;
    }
    if (!schema) throw new Error(`${file}: not an Arrow IPC file or stream (no schema message)`);
    return { isFile, schema, schemaMessage, batches, dictionaries };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function readSpan(fh: FileHandle, span: MessageSpan, file: string): Promise<Uint8Array> {
  const buf = new Uint8Array(span.bytes);
  await readFully(fh, buf, span.offset, file);
  return buf;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function ascii(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}
