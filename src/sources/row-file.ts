import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { readFully } from './npy.js';

/** Why a row's file was refused (not a regular file, or larger than the limit); the message is the row's error. */
export class RowFileError extends Error {}

/**
 * Reads the whole file of one row (an image), which must be a regular file of at most
 * `maxBytes` bytes (`name` is how messages call it). Anything else is a {@link RowFileError} and is never opened for reading
 * when stat already tells: opening a FIFO waits for a writer, and a device such as /dev/zero
 * never ends.
 */
export async function readRowFile(file: string, maxBytes: number, name: string = file): Promise<Uint8Array> {
  refuse(await stat(file), name, maxBytes);
  // O_NONBLOCK: a FIFO swapped in after the stat opens at once instead of waiting, and fstat
  // refuses it; on a regular file the flag changes nothing
  const fh = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = await fh.stat();
    refuse(st, name, maxBytes);
    const bytes = new Uint8Array(st.size);
    await readFully(fh, bytes, 0, file);
    return bytes;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function refuse(st: Stats, name: string, maxBytes: number): void {
  if (!st.isFile()) throw new RowFileError(`${name} is ${kindOf(st)}, not a regular file; only regular files are read`);
  if (st.size > maxBytes) throw new RowFileError(tooLarge(name, st.size, maxBytes));
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'something else';
}

/** The error text for a row whose object (S3) is larger than the limit. */
export function tooLarge(what: string, bytes: number, maxBytes: number): string {
  return `${what} is ${bytes} bytes, more than source.maxRowBytes (${maxBytes}); raise source.maxRowBytes to read it`;
}
