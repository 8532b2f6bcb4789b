import type { RowStage } from '../types/row-stage.js';
import { Int64, RecordBatch, Struct, Utf8, makeBuilder, makeData } from 'apache-arrow';
import { utf8Data } from './arrow-data.js';
import { errorsSchema } from './arrow-schema.js';
import { IpcFileWriter } from './ipc-file-writer.js';
import type { Sink } from '../storage/types.js';

/** A row that could not be embedded, as stored in an errors file. */
export interface ErrorRecord {
  /** the row's id; null when it has none (a null id cell, a line that is not JSON) */
  id: string | null;
  /** where it failed: 'read' | 'decode' | 'input' | 'features' */
  stage: RowStage;
  message: string;
  /** the row's 0-based index in the source: which row it is, id or not */
  position: number;
}

/** Writes an errors file (Arrow IPC, columns id/stage/message/position) under `key`, atomically; returns its full path/URI. */
export async function writeErrorsFile(sink: Sink, key: string, rows: readonly ErrorRecord[]): Promise<string> {
  const schema = errorsSchema();
  const ipc = await IpcFileWriter.open(await sink.createWriter(key), schema);
  try {
    if (rows.length > 0) {
      const ids = makeBuilder({ type: new Utf8(), nullValues: [null] });
      for (const r of rows) ids.append(r.id);
      const children = [
        ids.finish().flush(),
        utf8Data(rows.map((r) => r.stage)),
        utf8Data(rows.map((r) => r.message)),
        makeData({ type: new Int64(), length: rows.length, nullCount: 0, data: BigInt64Array.from(rows, (r) => BigInt(r.position)) }),
      ];
      const data = makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children });
      await ipc.write(new RecordBatch(schema, data));
    }
    return (await ipc.close()).uri;
  } catch (err) {
    await ipc.abort().catch(() => undefined);
    throw err;
  }
}
