import { readFile } from 'node:fs/promises';
import { tableFromIPC } from 'apache-arrow';
import type { Table } from 'apache-arrow';

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
