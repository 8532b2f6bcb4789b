import type { Schema } from 'apache-arrow';
import { collectingWriter, CollectedFileWriter, type CollectingWriter } from './arrow-chunks.js';
import type { SinkWriter } from '../storage/types.js';

/**
 * Streams an Arrow IPC file (the random-access "Feather v2" format) into a SinkWriter: each
 * batch's bytes are in the SinkWriter when its write resolves.
 */
export class IpcFileWriter extends CollectedFileWriter {
  private constructor(out: SinkWriter, ipc: CollectingWriter, schema: Schema) {
    super('IpcFileWriter', out, ipc, schema);
  }

  /** Writes the file preamble and schema, ready for batches. */
  static async open(out: SinkWriter, schema: Schema): Promise<IpcFileWriter> {
    const w = new IpcFileWriter(out, collectingWriter('file', schema, { copy: false }), schema);
    await w.flush();
    return w;
  }

  protected override written(): Promise<void> {
    return this.flush();
  }

  /** Writes the footer and commits the file under its final name. */
  async close(): Promise<{ rows: number; bytes: number; uri: string }> {
    this.finish();
    await this.flush();
    const { uri, bytes } = await this.out.commit();
    return { rows: this.rows, bytes, uri };
  }

  private async flush(): Promise<void> {
    for (const chunk of this.ipc.collector.take()) await this.out.write(chunk);
  }
}
