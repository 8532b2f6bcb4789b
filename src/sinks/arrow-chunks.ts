import { AsyncByteQueue, RecordBatchFileWriter, RecordBatchStreamWriter } from 'apache-arrow';
import type { RecordBatch, Schema } from 'apache-arrow';
import type { SinkWriter } from '../storage/types.js';

/**
 * Catches the byte chunks Arrow's writer emits instead of queueing them for an async reader,
 * so a part writer hands them on right after each batch and they never pile up in a queue.
 * The chunks are views of the batch's own column buffers; `copy` keeps copies instead, for a
 * writer that holds them past the batch's lifetime.
 */
class ChunkCollector extends AsyncByteQueue {
  private pending: Uint8Array[] = [];
  bytes = 0;

  constructor(private readonly copy: boolean) {
    super();
  }

  override write(value: Parameters<AsyncByteQueue['write']>[0]): void {
    // RecordBatchWriter._write always passes Uint8Array views
    if (!(value instanceof Uint8Array)) throw new TypeError('Arrow writer emitted a non-Uint8Array chunk');
    if (value.byteLength === 0) return;
    this.pending.push(this.copy ? value.slice() : value);
    this.bytes += value.byteLength;
  }

  /** The chunks written since the last take. */
  take(): Uint8Array[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }
}

/** An Arrow IPC writer (file or stream format) whose output is collected in memory. */
export interface CollectingWriter {
  readonly writer: RecordBatchFileWriter | RecordBatchStreamWriter;
  readonly collector: ChunkCollector;
}

/** An Arrow IPC writer for `schema` whose output chunks are collected (see {@link ChunkCollector}). */
export function collectingWriter(format: 'file' | 'stream', schema: Schema, opts: { copy: boolean }): CollectingWriter {
  const collector = new ChunkCollector(opts.copy);
  const writer = format === 'file' ? new RecordBatchFileWriter() : new RecordBatchStreamWriter();
  // the writers' sink is protected; this is the one place that replaces it
  (writer as unknown as { _sink: AsyncByteQueue })._sink = collector;
  writer.reset(undefined, schema);
  return { writer, collector };
}

/** Arrow's writers silently end a file on a batch with another schema; this fails loudly instead, naming `who`. */
export function checkBatchSchema(who: string, schema: Schema, batch: RecordBatch): void {
  const mine = schema.fields;
  const theirs = batch.schema.fields;
  if (theirs.length !== mine.length || theirs.some((f, i) => f.name !== mine[i]?.name || String(f.type) !== String(mine[i]?.type))) {
    const list = (fields: typeof mine) => fields.map((f) => `${f.name}: ${String(f.type)}`).join(', ');
    throw new Error(`${who}: batch columns (${list(theirs)}) do not match the file's schema (${list(mine)})`);
  }
}

/**
 * What the part-file writers share: record batches go to an Arrow IPC writer whose chunks are
 * collected, each checked against the file's schema first, rows counted; a write after close or
 * abort fails, an abort drops what was collected and the SinkWriter's temporary object. A writer
 * says what becomes of the chunks (`written`, after each batch) and how the file ends (`close`).
 */
export abstract class CollectedFileWriter {
  protected rows = 0;
  protected done = false;

  protected constructor(
    /** names the writer in errors */
    private readonly who: string,
    protected readonly out: SinkWriter,
    protected readonly ipc: CollectingWriter,
    protected readonly schema: Schema,
  ) {}

  /** Appends one record batch; once it resolves the caller may reuse the batch's buffers. */
  async write(batch: RecordBatch): Promise<void> {
    if (this.done) throw new Error(`${this.who}: write after close/abort`);
    checkBatchSchema(this.who, this.schema, batch);
    this.ipc.writer.write(batch);
    this.rows += batch.numRows;
    await this.written();
  }

  /** What a writer does with the chunks of the batch just written. */
  protected async written(): Promise<void> {}

  /** Ends the IPC writer, once: a second close is an error. */
  protected finish(): void {
    if (this.done) throw new Error(`${this.who}: already closed`);
    this.done = true;
    this.ipc.writer.close();
  }

  /** Writes the file's end and commits it under its final name. */
  abstract close(): Promise<{ rows: number; bytes: number; uri: string }>;

  /** Drops everything written; the final name is untouched. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.ipc.collector.take();
    await this.out.abort();
  }
}
