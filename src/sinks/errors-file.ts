import type { RowStage } from '../types/row-stage.js';
import { RecordBatch, Struct, makeData } from 'apache-arrow';
import { utf8Data } from './arrow-data.js';
import { errorsSchema } from './arrow-schema.js';
import { IpcFileWriter } from './ipc-file-writer.js';
import type { Sink } from '../storage/types.js';

/** A row that could not be embedded, as stored in an errors file. */
export interface ErrorRecord {
  id: string;
  /** where it failed: 'read' | 'decode' | 'forward' | 'features' */
  stage: RowStage;
  message: string;
}

/** Writes an errors file (Arrow IPC, columns id/stage/message) under `key`, atomically; returns its full path/URI. */
export async function writeErrorsFile(sink: Sink, key: string, rows: readonly ErrorRecord[]): Promise<string> {
  const schema = errorsSchema();
  const ipc = await IpcFileWriter.open(await sink.createWriter(key), schema);
  try {
    if (rows.length > 0) {
      const children = [utf8Data(rows.map((r) => r.id)), utf8Data(rows.map((r) => r.stage)), utf8Data(rows.map((r) => r.message))];
      const data = makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children });
      await ipc.write(new RecordBatch(schema, data));
    }
    return (await ipc.close()).uri;
  } catch (err) {
    await ipc.abort().catch(() => undefined);
    throw err;
  }
}
