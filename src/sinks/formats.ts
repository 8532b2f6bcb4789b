import type { RecordBatch, Schema } from 'apache-arrow';
import type { SinkWriter } from '../storage/types.js';
import { Registry } from '../types/registry.js';

/** What a part file's encoder does with record batches (IpcFileWriter, ParquetFileWriter). */
export interface BatchFileWriter {
  write(batch: RecordBatch): Promise<void>;
  /** finishes the file and commits it */
  close(): Promise<{ rows: number; bytes: number; uri: string }>;
  abort(): Promise<void>;
}

/** One file format of part files. Its encoder is imported by `open`. */
export interface PartFormatEntry {
  /** file name extension of its part files, without the dot */
  extension: string;
  /** starts a file with `schema` in `out` */
  open(out: SinkWriter, schema: Schema): Promise<BatchFileWriter>;
}

/** Part file formats by the name `sink.format` gives them. */
export type FormatRegistry = Registry<PartFormatEntry>;

/** The part formats layertap has built in: Arrow IPC files and Parquet. */
export function defaultFormats(): FormatRegistry {
  return new Registry<PartFormatEntry>('sink.format', 'format', {
    arrow: {
      extension: 'arrow',
      async open(out, schema) {
        const { IpcFileWriter } = await import('./ipc-file-writer.js');
        return IpcFileWriter.open(out, schema);
      },
    },
    parquet: {
      extension: 'parquet',
      async open(out, schema) {
        const { ParquetFileWriter } = await import('./parquet-file-writer.js');
        return ParquetFileWriter.open(out, schema);
      },
    },
  });
}

/** File extension of a part file of `format`, without the dot. */
export function partExtension(format: string, formats: FormatRegistry = defaultFormats()): string {
  return formats.get(format).extension;
}
