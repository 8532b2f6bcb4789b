import { readFile } from 'node:fs/promises';
import { tableFromIPC } from 'apache-arrow';
import type { Table } from 'apache-arrow';
import { loadParquetWasm } from '../storage/parquet-wasm.js';

/** Reads a whole Arrow IPC file (or stream) from a path or bytes into a Table. */
export async function readArrowFile(source: string | Uint8Array): Promise<Table> {
  const bytes = typeof source === 'string' ? await readFile(source) : source;
  try {
    return tableFromIPC(bytes);
  } catch (err) {
    const what = typeof source === 'string' ? source : 'the given bytes';
    throw new Error(`${what} is not a readable Arrow IPC file: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads a whole part file into a Table: Arrow IPC, or Parquet (told by its 'PAR1' magic) through
 * parquet-wasm, which restores the Arrow schema stored with it (FixedSizeList, metadata).
 */
export async function readPartFile(source: string | Uint8Array): Promise<Table> {
  const bytes = typeof source === 'string' ? await readFile(source) : source;
  if (bytes.byteLength >= 4 && bytes[0] === 0x50 && bytes[1] === 0x41 && bytes[2] === 0x52 && bytes[3] === 0x31) {
    const pq = await loadParquetWasm();
    try {
      return tableFromIPC(pq.readParquet(bytes).intoIPCStream());
    } catch (err) {
      const what = typeof source === 'string' ? source : 'the given bytes';
      throw new Error(`${what} is not a readable Parquet file: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  return readArrowFile(bytes);
}
