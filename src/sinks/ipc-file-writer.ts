import { AsyncByteQueue, RecordBatchFileWriter } from 'apache-arrow';
import type { RecordBatch, Schema } from 'apache-arrow';
import type { SinkWriter } from '../storage/types.js';

/**
 * Catches the byte chunks Arrow's writer emits instead of queueing them for an async reader,
 * so they can be handed to the SinkWriter right after each batch (with backpressure) and never
 * pile up into a whole file in memory.
 */
class ChunkCollector extends AsyncByteQueue {
  private pending: Uint8Array[] = [];

  override write(value: Parameters<AsyncByteQueue['write']>[0]): void {
    // RecordBatchWriter._write always passes Uint8Array views (of the column buffers themselves)
    if (!(value instanceof Uint8Array)) throw new TypeError('Arrow writer emitted a non-Uint8Array chunk');
    if (value.byteLength > 0) this.pending.push(value);
  }

  take(): Uint8Array[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }
}

class CollectingFileWriter extends RecordBatchFileWriter {
  readonly collector = new ChunkCollector();

  constructor() {
    super();
    this._sink = this.collector;
  }
}

/** Streams an Arrow IPC file (the random-access "Feather v2" format) into a SinkWriter. */
export class IpcFileWriter {
  private bytes = 0;
  private rows = 0;
  private done = false;

  private constructor(
    private readonly out: SinkWriter,
    private readonly writer: CollectingFileWriter,
    private readonly schema: Schema,
  ) {}

  /** Writes the file preamble and schema, ready for batches. */
  static async open(out: SinkWriter, schema: Schema): Promise<IpcFileWriter> {
    const writer = new CollectingFileWriter();
    writer.reset(undefined, schema);
    const w = new IpcFileWriter(out, writer, schema);
    await w.flush();
    return w;
  }

  /** Appends one record batch; resolves once its bytes are in the SinkWriter (the batch's buffers may then be reused). */
  async write(batch: RecordBatch): Promise<void> {
    if (this.done) throw new Error('IpcFileWriter: write after close/abort');
    // Arrow's writer silently ends the file on a batch with a different schema; fail loudly instead
    const mine = this.schema.fields;
    const theirs = batch.schema.fields;
    if (theirs.length !== mine.length || theirs.some((f, i) => f.name !== mine[i]?.name || String(f.type) !== String(mine[i]?.type))) {
      throw new Error(
        `IpcFileWriter: batch columns (${theirs.map((f) => `${f.name}: ${String(f.type)}`).join(', ')}) do not match the file's schema (${mine.map((f) => `${f.name}: ${String(f.type)}`).join(', ')})`,
      );
    }
    this.writer.write(batch);
    this.rows += batch.numRows;
    await this.flush();
  }

  /** Writes the footer and commits the file under its final name. */
  async close(): Promise<{ rows: number; bytes: number; uri: string }> {
    if (this.done) throw new Error('IpcFileWriter: already closed');
    this.done = true;
    this.writer.close();
    await this.flush();
    const { uri, bytes } = await this.out.commit();
    return { rows: this.rows, bytes, uri };
  }

  /** Drops everything written; the final name is untouched. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.writer.collector.take();
    await this.out.abort();
  }

  private async flush(): Promise<void> {
    for (const chunk of this.writer.collector.take()) {
      await this.out.write(chunk);
      this.bytes += chunk.byteLength;
    }
  }
}
