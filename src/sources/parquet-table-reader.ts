import { openAsBlob } from 'node:fs';
import { tableFromIPC } from 'apache-arrow';
import type { ParquetFile } from 'parquet-wasm';
import { loadParquetWasm } from '../storage/parquet-wasm.js';
import { arrowColumn, arrowRows } from './table-cells.js';
import type { RawRow, RowColumns, TableColumn } from './table-cells.js';
import { checkShard, piecesFor, planRows } from './table-reader.js';
import type { TableReader } from './table-reader.js';
import type { ShardSpec } from './types.js';

interface ParquetInfo {
  file: ParquetFile;
  columns: TableColumn[];
  rowGroups: number[];
}

/**
 * Reads a Parquet file one row group at a time with parquet-wasm. The file is opened as a lazy
 * Blob, so only the footer and the row groups (and columns) a shard needs are read from disk.
 */
export class ParquetTableReader implements TableReader {
  private info: Promise<ParquetInfo> | null = null;

  constructor(private readonly path: string) {}

  async columns(): Promise<TableColumn[]> {
    return (await this.getInfo()).columns;
  }

  async count(): Promise<number> {
    return (await this.getInfo()).rowGroups.reduce((a, b) => a + b, 0);
  }

  async *plan(shardSize: number): AsyncIterable<ShardSpec> {
    yield* planRows(await this.count(), shardSize);
  }

  async *rows(shard: ShardSpec, columns: RowColumns): AsyncIterable<RawRow> {
    const info = await this.getInfo();
    checkShard(shard, await this.count(), this.path);
    const wanted = columns.id === null ? [columns.input] : [columns.id, columns.input];
    for (const p of piecesFor(info.rowGroups, shard.start, shard.count)) {
      let group;
      try {
        group = await info.file.read({ rowGroups: [p.piece], columns: wanted });
      } catch (err) {
        throw new Error(`${this.path}: cannot read row group ${p.piece}: ${describe(err)}`, { cause: err });
      }
      const table = tableFromIPC(group.intoIPCStream());
      yield* arrowRows(table, p.from, p.to, columns, p.first);
    }
  }

  async close(): Promise<void> {
    const info = this.info;
    this.info = null;
    if (info) await info.then((i) => i.file.free()).catch(() => undefined);
  }

  private getInfo(): Promise<ParquetInfo> {
    this.info ??= this.load();
    return this.info;
  }

  private async load(): Promise<ParquetInfo> {
    const pq = await loadParquetWasm();
    let file: ParquetFile;
    try {
      file = await pq.ParquetFile.fromFile(await openAsBlob(this.path));
    } catch (err) {
      throw new Error(`${this.path}: not a readable Parquet file: ${describe(err)}`, { cause: err });
    }
    const meta = file.metadata();
    const rowGroups = meta.rowGroups().map((g) => {
      const n = g.numRows();
      g.free();
      return n;
    });
    meta.free();
    const schema = tableFromIPC(file.schema().intoIPCStream()).schema;
    return { file, columns: schema.fields.map(arrowColumn), rowGroups };
  }
}

/** parquet-wasm throws strings as well as Errors. */
function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
