import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { DataType, Field, Message, type MetadataVersion, tableFromIPC } from 'apache-arrow';
import type { Schema, Table } from 'apache-arrow';
// the footer decoder is not re-exported by the package's index; it is the one Arrow JS's own file reader uses
import { Footer } from 'apache-arrow/ipc/metadata/file';
import { checkBatchBounds, checkBatchLayout, checkFooterMetadata, checkMessageMetadata } from './arrow-ipc-check.js';
import type { BatchLayout } from './arrow-ipc-check.js';
import { DamagedTableError, describeThrown } from './errors.js';
import { readFully } from './npy.js';
import { arrowColumn, arrowRows } from './table-cells.js';
import type { RawRow, RowColumns, TableColumn } from './table-cells.js';
import { checkShard, piecesFor, planRows } from './table-reader.js';
import type { TableReader } from './table-reader.js';
import type { ShardSpec } from './types.js';

const MAGIC = 'ARROW1';
const EOS = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
/** "ARROW1" + 2 bytes of padding before the messages of a file */
const FILE_HEAD = 8;
/** int32 footer length + "ARROW1" after the footer */
const FILE_TAIL = 10;

/** Where a message sits in the file: `bytes` from `offset`, prefix + metadata + body. */
interface MessageSpan {
  offset: number;
  bytes: number;
}

interface BatchSpan extends MessageSpan {
  rows: number;
  /** how many dictionary batches precede it: it needs those */
  dictionaries: number;
}

interface IpcIndex {
  schema: Schema;
  /** the schema message (prefix + metadata; it has no body) that starts the little stream a batch is decoded from */
  schemaMessage: Uint8Array;
  batches: BatchSpan[];
  /** dictionary batches in file order */
  dictionaries: MessageSpan[];
}

/**
 * Reads an Arrow IPC file (Feather v2, `ARROW1` magic) or stream one record batch at a time. The
 * index is built from the message headers alone (no data is read), which gives each batch's
 * row count for planning; reading a shard loads only the batches it overlaps, each decoded as a
 * tiny stream of schema + dictionaries + batch.
 *
 * Nothing stored in the file is trusted before it is checked against the file: the footer and
 * message lengths against the bytes that hold them, the metadata's flatbuffer offsets and vector
 * lengths against the metadata, each batch's buffers against its body, its row count against its
 * columns and their buffers, and a file's footer against the messages found. A file that fails
 * a check is a {@link DamagedTableError}.
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
    const pieces = piecesFor(
      index.batches.map((b) => b.rows),
      shard.start,
      shard.count,
    );
    const fh = await open(this.file, 'r');
    try {
      for (const p of pieces) {
        const batch = index.batches[p.piece]!;
        const parts: Uint8Array[] = [index.schemaMessage];
        for (const d of index.dictionaries.slice(0, batch.dictionaries)) parts.push(await readSpan(fh, d, this.file));
        parts.push(await readSpan(fh, batch, this.file), EOS);
        yield* arrowRows(this.decode(concat(parts), p.piece, batch.rows), p.from, p.to, columns, p.first);
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.index = null;
  }

  private decode(stream: Uint8Array, piece: number, rows: number): Table {
    let table: Table;
    try {
      table = tableFromIPC(stream);
    } catch (err) {
      throw new DamagedTableError(this.file, `cannot decode record batch ${piece}: ${describeThrown(err)}`, { cause: err });
    }
    if (table.numRows !== rows) throw new DamagedTableError(this.file, `record batch ${piece} decodes to ${table.numRows} rows, but its header says ${rows}`);
    return table;
  }

  private getIndex(): Promise<IpcIndex> {
    this.index ??= readIndex(this.file);
    return this.index;
  }
}

async function readIndex(file: string): Promise<IpcIndex> {
  const damaged = (reason: string, cause?: unknown) => new DamagedTableError(file, reason, cause === undefined ? undefined : { cause });
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const head = new Uint8Array(Math.min(size, 8));
    await readFully(fh, head, 0, file);
    const isFile = ascii(head.subarray(0, 6)) === MAGIC;
    let pos = 0;
    let end = size;
    let footer: InstanceType<typeof Footer> | null = null;
    if (isFile) {
      if (size < FILE_HEAD + FILE_TAIL + 4) throw damaged(`Arrow IPC file is cut short (${size} bytes)`);
      const tail = new Uint8Array(FILE_TAIL);
      await readFully(fh, tail, size - FILE_TAIL, file);
      if (ascii(tail.subarray(4)) !== MAGIC) throw damaged('Arrow IPC file has no footer (the file is truncated or still being written)');
      const footerLen = new DataView(tail.buffer).getInt32(0, true);
      const room = size - FILE_HEAD - FILE_TAIL;
      if (footerLen < 4 || footerLen > room) throw damaged(`the footer length says ${footerLen} bytes, but the file has room for ${room}`);
      pos = FILE_HEAD;
      end = size - FILE_TAIL - footerLen;
      const bytes = new Uint8Array(footerLen);
      await readFully(fh, bytes, end, file);
      try {
        checkFooterMetadata(bytes);
        footer = Footer.decode(bytes);
      } catch (err) {
        throw damaged(`unreadable footer: ${describeThrown(err)}`, err);
      }
    } else if (ascii(head.subarray(0, 4)) === 'FEA1') {
      throw new Error(`${file}: Feather v1 files are not supported; rewrite it as Arrow IPC (pyarrow.feather.write_feather(df, path, version=2))`);
    }

    let schema: Schema | null = null;
    let schemaMessage: Uint8Array | null = null;
    const batches: Array<BatchSpan & { layout: BatchLayout; version: MetadataVersion }> = [];
    const dictionaries: Array<MessageSpan & { id: number; layout: BatchLayout; version: MetadataVersion }> = [];
    const prefix = new Uint8Array(8);
    const view = new DataView(prefix.buffer);
    while (pos < end) {
      const n = Math.min(8, end - pos);
      await readFully(fh, prefix.subarray(0, n), pos, file);
      // a stream has nothing after its last message; a cut-off prefix means the stream is cut short
      if (n < 4) {
        if (isFile) break;
        throw damaged(`the stream is cut short: ${n} stray byte(s) at byte ${pos}`);
      }
      let metaLen = view.getInt32(0, true);
      let prefixLen = 4;
      if (metaLen === -1) {
        if (n < 8) {
          if (isFile) break;
          throw damaged(`the stream is cut short in the message at byte ${pos}`);
        }
        metaLen = view.getInt32(4, true);
        prefixLen = 8;
      }
      if (metaLen === 0) break; // end-of-stream marker
      const where = isFile ? ' before the footer' : '';
      if (metaLen < 0 || metaLen > end - pos - prefixLen) {
        throw damaged(`the message at byte ${pos} says its metadata is ${metaLen} bytes, but ${end - pos - prefixLen} remain${where}`);
      }
      const meta = new Uint8Array(metaLen);
      await readFully(fh, meta, pos + prefixLen, file);
      let msg: Message;
      try {
        checkMessageMetadata(meta);
        msg = Message.decode(meta);
      } catch (err) {
        throw damaged(`not an Arrow IPC file or stream (unreadable message at byte ${pos}: ${describeThrown(err)})`, err);
      }
      const body = msg.bodyLength;
      const room = end - pos - prefixLen - metaLen;
      if (!Number.isSafeInteger(body) || body < 0 || body > room)
        throw damaged(`the message at byte ${pos} says its body is ${body} bytes, but ${room} remain${where}`);
      const span = { offset: pos, bytes: prefixLen + metaLen + body };
      try {
        if (msg.isSchema()) {
          if (schema) throw damaged('Arrow IPC data with two schemas (concatenated streams?)');
          schema = msg.header();
          schemaMessage = new Uint8Array(prefixLen + metaLen);
          schemaMessage.set(prefix.subarray(0, prefixLen), 0);
          schemaMessage.set(meta, prefixLen);
        } else if (msg.isRecordBatch()) {
          const header = msg.header();
          const layout = layoutOf(header, header.compression !== null);
          const problem = checkBatchBounds(layout, body);
          if (problem) throw damaged(`record batch ${batches.length} ${problem}`);
          batches.push({ ...span, rows: layout.length, dictionaries: dictionaries.length, layout, version: msg.version });
        } else if (msg.isDictionaryBatch()) {
          const header = msg.header();
          const layout = layoutOf(header.data, header.data.compression !== null);
          const problem = checkBatchBounds(layout, body);
          if (problem) throw damaged(`dictionary batch ${dictionaries.length} ${problem}`);
          dictionaries.push({ ...span, id: header.id, layout, version: msg.version });
        }
      } catch (err) {
        if (err instanceof DamagedTableError) throw err;
        throw damaged(`unreadable message at byte ${pos}: ${describeThrown(err)}`, err);
      }
      pos += span.bytes;
    }

    if (footer) {
      // the footer is what other readers go by: it must list exactly the batches found
      let blocks: MessageSpan[];
      try {
        blocks = [...footer.recordBatches()].map((b) => ({ offset: b.offset, bytes: b.metaDataLength + b.bodyLength }));
      } catch (err) {
        throw damaged(`unreadable footer: ${describeThrown(err)}`, err);
      }
      const spans = (list: MessageSpan[]) => `[${list.map((b) => `${b.bytes} bytes at ${b.offset}`).join(', ')}]`;
      if (blocks.length !== batches.length || blocks.some((b, i) => b.offset !== batches[i]!.offset || b.bytes !== batches[i]!.bytes)) {
        throw damaged(`the footer lists ${blocks.length} record batch(es) ${spans(blocks)}, but the file holds ${batches.length} ${spans(batches)}`);
      }
      // Arrow JS (and so layertap's own parts) keep a file's schema only in its footer
      if (!schema) {
        schema = footer.schema;
        schemaMessage = schemaMessageOf(schema);
      }
    }
    if (!schema || !schemaMessage) throw damaged('not an Arrow IPC file or stream (no schema message)');

    const dictionaryTypes = new Map<number, DataType>();
    collectDictionaries(schema.fields, dictionaryTypes);
    for (const [i, d] of dictionaries.entries()) {
      const type = dictionaryTypes.get(d.id);
      if (!type) throw damaged(`dictionary batch ${i} is for dictionary ${d.id}, which no column uses`);
      const problem = checkBatchLayout(d.layout, [new Field('dictionary', type)], d.version);
      if (problem) throw damaged(`dictionary batch ${i} ${problem}`);
    }
    for (const [i, b] of batches.entries()) {
      const problem = checkBatchLayout(b.layout, schema.fields, b.version);
      if (problem) throw damaged(`record batch ${i} ${problem}`);
    }
    return {
      schema,
      schemaMessage,
      batches: batches.map(({ offset, bytes, rows, dictionaries: d }) => ({ offset, bytes, rows, dictionaries: d })),
      dictionaries: dictionaries.map(({ offset, bytes }) => ({ offset, bytes })),
    };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** The numbers of a decoded record batch header that the checks look at. */
function layoutOf(
  header: {
    length: number;
    nodes: Array<{ length: number; nullCount: number }>;
    buffers: Array<{ offset: number; length: number }>;
    variadicBufferCounts: number[];
  },
  compressed: boolean,
): BatchLayout {
  return { length: header.length, nodes: header.nodes, buffers: header.buffers, compressed, variadicBufferCounts: header.variadicBufferCounts };
}

function collectDictionaries(fields: readonly Field[], out: Map<number, DataType>): void {
  for (const f of fields) {
    if (DataType.isDictionary(f.type)) out.set(f.type.id, f.type.dictionary);
    collectDictionaries(f.type.children ?? [], out);
  }
}

/** A schema message for a file that keeps its schema only in the footer, so batches can be decoded as a stream. */
function schemaMessageOf(schema: Schema): Uint8Array {
  const meta = Message.encode(Message.from(schema));
  // continuation marker + length, metadata padded so that what follows starts 8-byte aligned
  const padded = Math.ceil(meta.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded);
  const view = new DataView(out.buffer);
  view.setInt32(0, -1, true);
  view.setInt32(4, padded, true);
  out.set(meta, 8);
  return out;
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
