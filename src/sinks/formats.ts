import type { RecordBatch, Schema, Table } from 'apache-arrow';
import type { SinkWriter } from '../storage/types.js';
import { Registry } from '../types/registry.js';
import { decodeArrow, decodeParquet, looksLikeArrow, looksLikeParquet } from './part-readers.js';
import type { TableFormat } from './table-destination.js';

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
  /** decodes a whole part file of this format (`what` names it in errors) */
  read(bytes: Uint8Array, what: string): Promise<Table>;
  /** whether `bytes` are the start of a file of this format, for bytes whose name is not known */
  recognises(bytes: Uint8Array): boolean;
  /**
   * set for a format whose rows go into a table: the part files are its staging, and the table
   * is made equal to the run's rows when the run commits (see {@link TableFormat})
   */
  table?: TableFormat;
}

/** Part file formats by the name `sink.format` gives them. */
export type FormatRegistry = Registry<PartFormatEntry>;

const arrowFiles: PartFormatEntry = {
  extension: 'arrow',
  async open(out, schema) {
    const { IpcFileWriter } = await import('./ipc-file-writer.js');
    return IpcFileWriter.open(out, schema);
  },
  read: async (bytes, what) => decodeArrow(bytes, what),
  recognises: looksLikeArrow,
};

/** The part formats layertap has built in: Arrow IPC files, Parquet, and LanceDB tables (staged as Arrow IPC files). */
export function defaultFormats(): FormatRegistry {
  return new Registry<PartFormatEntry>('sink.format', 'format', {
    arrow: arrowFiles,
    parquet: {
      extension: 'parquet',
      async open(out, schema) {
        const { ParquetFileWriter } = await import('./parquet-file-writer.js');
        return ParquetFileWriter.open(out, schema);
      },
      read: decodeParquet,
      recognises: looksLikeParquet,
    },
    lancedb: { ...arrowFiles, table: lanceDbTables },
  });
}

/** LanceDB tables; the module (and LanceDB's native library) is loaded when a job uses one. */
const lanceDbTables: TableFormat = {
  fields: ['table', 'index'],
  runsUri: (spec) => `${spec.uri.replace(/\/+$/, '')}/${spec.table}.layertap`,
  async check(spec) {
    const { LanceDbDestination } = await import('./lancedb-table.js');
    await LanceDbDestination.check(spec);
  },
  async open(spec) {
    const { LanceDbDestination } = await import('./lancedb-table.js');
    return LanceDbDestination.open(spec);
  },
};

/** File extension of a part file of `format`, without the dot. */
export function partExtension(format: string, formats: FormatRegistry = defaultFormats()): string {
  return formats.get(format).extension;
}
