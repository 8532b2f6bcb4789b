import type { RecordBatch, Schema } from 'apache-arrow';
import { checkBatchSchema, collectingWriter, type CollectingWriter } from './arrow-chunks.js';
import type { SinkWriter } from '../storage/types.js';

/** Streams an Arrow IPC file (the random-access "Feather v2" format) into a SinkWriter. */
export class IpcFileWriter {
  private bytes = 0;
  private rows = 0;
  private done = false;

  private constructor(
    private readonly out: SinkWriter,
    private readonly ipc: CollectingWriter,
    private readonly schema: Schema,
  ) {}

  /** Writes the file preamble and schema, ready for batches. */
  static async open(out: SinkWriter, schema: Schema): Promise<IpcFileWriter> {
    const w = new IpcFileWriter(out, collectingWriter('file', schema, { copy: false }), schema);
    await w.flush();
    return w;
  }

  /** Appends one record batch; resolves once its bytes are in the SinkWriter (the batch's buffers may then be reused). */
  async write(batch: RecordBatch): Promise<void> {
    if (this.done) throw new Error('IpcFileWriter: write after close/abort');
    checkBatchSchema('IpcFileWriter', this.schema, batch);
    this.ipc.writer.write(batch);
    this.rows += batch.numRows;
    await this.flush();
  }

  /** Writes the footer and commits the file under its final name. */
  async close(): Promise<{ rows: number; bytes: number; uri: string }> {
    if (this.done) throw new Error('IpcFileWriter: already closed');
    this.done = true;
    this.ipc.writer.close();
    await this.flush();
    const { uri, bytes } = await this.out.commit();
    return { rows: this.rows, bytes, uri };
  }

  /** Drops everything written; the final name is untouched. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.ipc.collector.take();
    await this.out.abort();
  }

  private async flush(): Promise<void> {
    for (const chunk of this.ipc.collector.take()) {
      await this.out.write(chunk);
      this.bytes += chunk.byteLength;
    }
  }
}
