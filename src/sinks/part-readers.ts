import { tableFromIPC, type Table } from 'apache-arrow';
import { loadParquetWasm } from '../storage/parquet-wasm.js';

/** Decodes an Arrow IPC file (or stream); `what` names it in the error. */
export function decodeArrow(bytes: Uint8Array, what: string): Table {
  try {
    return tableFromIPC(bytes);
  } catch (err) {
    throw new Error(`${what} is not a readable Arrow IPC file: ${(err as Error).message}`, { cause: err });
  }
}

/** Decodes a Parquet file through parquet-wasm, which restores the Arrow schema stored with it (FixedSizeList, metadata). */
export async function decodeParquet(bytes: Uint8Array, what: string): Promise<Table> {
  const pq = await loadParquetWasm();
  try {
    return tableFromIPC(pq.readParquet(bytes).intoIPCStream());
  } catch (err) {
    throw new Error(`${what} is not a readable Parquet file: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** Whether `bytes` start as a Parquet file does ('PAR1'). */
export function looksLikeParquet(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 4 && bytes[0] === 0x50 && bytes[1] === 0x41 && bytes[2] === 0x52 && bytes[3] === 0x31;
}

/** Whether `bytes` start as an Arrow IPC file ('ARROW1') or stream (a continuation marker) does. */
export function looksLikeArrow(bytes: Uint8Array): boolean {
  const file = bytes.byteLength >= 6 && Buffer.from(bytes.subarray(0, 6)).toString('latin1') === 'ARROW1';
  const stream = bytes.byteLength >= 4 && bytes[0] === 0xff && bytes[1] === 0xff && bytes[2] === 0xff && bytes[3] === 0xff;
  return file || stream;
}
