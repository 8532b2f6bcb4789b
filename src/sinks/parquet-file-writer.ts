import type { Schema } from 'apache-arrow';
import { collectingWriter, CollectedFileWriter, type CollectingWriter } from './arrow-chunks.js';
import { loadParquetWasm } from '../storage/parquet-wasm.js';
import type { SinkWriter } from '../storage/types.js';

/** Rows per Parquet row group: small enough that a reader streaming row groups holds little, large enough to scan fast. */
const ROW_GROUP_ROWS = 8192;
/** Bytes handed to the SinkWriter at a time. */
const WRITE_CHUNK = 4 * 1024 * 1024;

/**
 * Writes one Parquet file from record batches. The batches are kept as an Arrow IPC stream in
 * memory (one shard, so `shardSize` bounds it) and converted by parquet-wasm on close, which
 * stores the Arrow schema alongside (ARROW:schema), so Arrow readers get FixedSizeList columns
 * and the field metadata back; the schema metadata also goes into Parquet's key-value metadata,
 * where tools that do not read the Arrow schema (DuckDB's parquet_kv_metadata) find it.
 */
export class ParquetFileWriter extends CollectedFileWriter {
  private constructor(out: SinkWriter, ipc: CollectingWriter, schema: Schema) {
    super('ParquetFileWriter', out, ipc, schema);
  }

  /** Starts a Parquet file with `schema`, ready for batches. */
  static async open(out: SinkWriter, schema: Schema): Promise<ParquetFileWriter> {
    await loadParquetWasm();
    // the batches are held until close, past their buffers' reuse: copies
    return new ParquetFileWriter(out, collectingWriter('stream', schema, { copy: true }), schema);
  }

  /** Encodes the Parquet file, hands it to the SinkWriter and commits it under its final name. */
  async close(): Promise<{ rows: number; bytes: number; uri: string }> {
    this.finish();
    const ipcBytes = this.ipc.collector.bytes;
    const chunks = this.ipc.collector.take();
    const ipc = new Uint8Array(ipcBytes);
    let at = 0;
    for (const c of chunks) {
      ipc.set(c, at);
      at += c.byteLength;
    }
    chunks.length = 0;
    let parquet: Uint8Array;
    try {
      parquet = await encodeParquet(ipc, this.schema);
    } catch (err) {
      await this.out.abort().catch(() => undefined);
      throw err;
    }
    for (let off = 0; off < parquet.byteLength; off += WRITE_CHUNK) {
      await this.out.write(parquet.subarray(off, Math.min(off + WRITE_CHUNK, parquet.byteLength)));
    }
    const { uri, bytes } = await this.out.commit();
    return { rows: this.rows, bytes, uri };
  }
}

/** An Arrow IPC stream as a Parquet file (snappy-compressed, one row group per ROW_GROUP_ROWS rows). */
export async function encodeParquet(ipcStream: Uint8Array, schema: Schema): Promise<Uint8Array> {
  const pq = await loadParquetWasm();
  const table = pq.Table.fromIPCStream(ipcStream);
  const props = new pq.WriterPropertiesBuilder()
    .setCompression(pq.Compression.SNAPPY)
    .setMaxRowGroupSize(ROW_GROUP_ROWS)
    .setKeyValueMetadata(new Map(schema.metadata))
    .build();
  // writeParquet takes ownership of the table and the properties and frees them
  return pq.writeParquet(table, props);
}
