import { open } from 'node:fs/promises';
import { Message, Schema, tableFromIPC } from 'apache-arrow';
import type { Table } from 'apache-arrow';
import { loadParquetWasm } from '../storage/parquet-wasm.js';
import { DamagedTableError, describeThrown } from './errors.js';
import { readFully } from './npy.js';
import { checkPages, hasArrowSchema, readParquetMetadata, rowGroupFile, schemaOnlyFile } from './parquet-metadata.js';
import type { ParquetMetadata } from './parquet-metadata.js';
import { arrowColumn, arrowRows } from './table-cells.js';
import type { RawRow, RowColumns, TableColumn } from './table-cells.js';
import { checkShard, piecesFor, planRows } from './table-reader.js';
import type { TableReader } from './table-reader.js';
import type { ShardSpec } from './types.js';
import { Lazy } from '../types/lazy.js';

interface ParquetInfo {
  metadata: ParquetMetadata;
  /** the Arrow schema parquet-wasm reads the file as */
  schema: Schema;
  columns: TableColumn[];
}

/**
 * Reads a Parquet file one row group at a time. The footer is read and checked here (row counts
 * against the column chunks, chunks inside the file); a shard reads only the column chunks of
 * the row groups and columns it needs, checks their page headers, and has parquet-wasm decode
 * them as a little file of their own (see parquet-metadata.ts).
 */
export class ParquetTableReader implements TableReader {
  private readonly info = new Lazy<ParquetInfo>(() => this.load());

  constructor(private readonly path: string) {}

  async columns(): Promise<TableColumn[]> {
    return (await this.info.get()).columns;
  }

  async count(): Promise<number> {
    return (await this.info.get()).metadata.rows;
  }

  async *plan(shardSize: number): AsyncIterable<ShardSpec> {
    yield* planRows(await this.count(), shardSize);
  }

  async *rows(shard: ShardSpec, columns: RowColumns): AsyncIterable<RawRow> {
    const { metadata, schema } = await this.info.get();
    checkShard(shard, metadata.rows, this.path);
    const wanted = [...(columns.id === null ? [columns.input] : [columns.id, columns.input]), ...(columns.carry ?? []).map((c) => c.name)];
    const keep = new Set(wanted);
    const hint = hasArrowSchema(metadata) ? arrowSchemaHint(schema, keep) : undefined;
    const pieces = piecesFor(
      metadata.rowGroups.map((g) => g.rows),
      shard.start,
      shard.count,
    );
    const fh = await open(this.path, 'r');
    try {
      for (const p of pieces) {
        const chunks = metadata.rowGroups[p.piece]!.chunks;
        const file = rowGroupFile(metadata, p.piece, keep, hint);
        for (const [i, at] of file.slots) {
          const chunk = chunks[i]!;
          const bytes = file.bytes.subarray(at, at + chunk.bytes);
          await readFully(fh, bytes, chunk.start, this.path);
          const problem = checkPages(bytes, chunk);
          if (problem) throw new DamagedTableError(this.path, `row group ${p.piece} column '${chunk.path.join('.')}': ${problem}`);
        }
        yield* arrowRows(await this.decode(file.bytes, p.piece), p.from, p.to, columns, p.first);
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.info.reset();
  }

  /** Decodes a one-row-group file; the synchronous reader reports damage as an error, never as a hang. */
  private async decode(file: Uint8Array, piece: number): Promise<Table> {
    const pq = await loadParquetWasm();
    let table: Table;
    try {
      table = tableFromIPC(pq.readParquet(file).intoIPCStream());
    } catch (err) {
      throw new DamagedTableError(this.path, `cannot read row group ${piece}: ${describeThrown(err)}`, { cause: err });
    }
    const rows = (await this.info.get()).metadata.rowGroups[piece]!.rows;
    if (table.numRows !== rows) throw new DamagedTableError(this.path, `row group ${piece} decodes to ${table.numRows} rows, but its metadata says ${rows}`);
    return table;
  }

  private async load(): Promise<ParquetInfo> {
    const fh = await open(this.path, 'r');
    let metadata: ParquetMetadata;
    try {
      metadata = await readParquetMetadata(fh, this.path);
    } finally {
      await fh.close().catch(() => undefined);
    }
    const pq = await loadParquetWasm();
    let schema: Schema;
    try {
      schema = tableFromIPC(pq.readSchema(schemaOnlyFile(metadata)).intoIPCStream()).schema;
    } catch (err) {
      throw new DamagedTableError(this.path, `not a readable Parquet file: ${describeThrown(err)}`, { cause: err });
    }
    return { metadata, schema, columns: schema.fields.map(arrowColumn) };
  }
}

/**
 * The ARROW:schema hint (base64 of an IPC schema message, as Arrow writers store it) for the
 * kept columns of a one-row-group file, so they decode to the same Arrow types as in the file.
 */
function arrowSchemaHint(schema: Schema, keep: ReadonlySet<string>): string {
  const meta = Message.encode(
    Message.from(
      new Schema(
        schema.fields.filter((f) => keep.has(f.name)),
        schema.metadata,
      ),
    ),
  );
  const out = new Uint8Array(8 + meta.byteLength);
  const view = new DataView(out.buffer);
  view.setInt32(0, -1, true);
  view.setInt32(4, meta.byteLength, true);
  out.set(meta, 8);
  return Buffer.from(out).toString('base64');
}
