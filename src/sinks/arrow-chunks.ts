import { AsyncByteQueue, RecordBatchFileWriter, RecordBatchStreamWriter } from 'apache-arrow';
import type { RecordBatch, Schema } from 'apache-arrow';

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
