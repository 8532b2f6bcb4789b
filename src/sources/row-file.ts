import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { readFully } from './npy.js';

/** Why a row's file was refused (not a regular file, or larger than the limit); the message is the row's error. */
export class RowFileError extends Error {}

/** A row's file that lies outside the folder it must stay in, reached through a symlink or `..`. */
export class OutsideFolderError extends RowFileError {
  constructor(
    /** where the file really is: its resolved path, or the path of the file that was opened */
    readonly resolved: string,
  ) {
    super(`${resolved} is outside the folder it must stay in`);
  }
}

/**
 * Reads the whole file of one row (an image), `full`, which must lie under the folder whose
 * real path is `realRoot`, be a regular file and hold at most `maxBytes` bytes (`name` is how
 * messages call it); anything else is a {@link RowFileError} ({@link OutsideFolderError} for a
 * file outside the folder).
 *
 * The check is of what was opened, not only of the path: a folder swapped for a symlink between
 * the check and the read would otherwise read a file from anywhere. The path is resolved and
 * checked, then opened without following a symlink in its last component, and the descriptor's
 * own path (`/proc/self/fd/N`) must be under the folder too; where there is no procfs, the
 * descriptor's device and inode must be those of the path resolved again. A FIFO or a device
 * is never opened for reading when stat already tells: opening a FIFO waits for a writer, and
 * a device such as /dev/zero never ends.
 */
export async function readRowFileInside(realRoot: string, full: string, maxBytes: number, name: string = full): Promise<Uint8Array> {
  const real = await realpath(full);
  if (!isInside(realRoot, real)) throw new OutsideFolderError(real);
  refuse(await stat(real), name, maxBytes);
  let fh: FileHandle;
  try {
    // O_NONBLOCK: a FIFO swapped in after the stat opens at once instead of waiting, and fstat
    // refuses it; O_NOFOLLOW: a last component swapped for a symlink is not followed
    fh = await open(real, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0) | (constants.O_NOCTTY ?? 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new RowFileError(`${name} was swapped for a symlink while it was read; it is not read`);
    throw err;
  }
  try {
    await checkOpened(fh, realRoot, full, name);
    const st = await fh.stat();
    refuse(st, name, maxBytes);
    const bytes = new Uint8Array(st.size);
    await readFully(fh, bytes, 0, name);
    return bytes;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Whether `file` (a real path) is `root` or under it. */
export function isInside(root: string, file: string): boolean {
  return file === root || file.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** Throws {@link OutsideFolderError} when the file open at `fh` is not under `realRoot`. */
async function checkOpened(fh: FileHandle, realRoot: string, full: string, name: string): Promise<void> {
  if (process.platform === 'linux') {
    let opened: string | null = null;
    try {
      opened = await readlink(`/proc/self/fd/${fh.fd}`);
    } catch (err) {
      // no procfs mounted (some sandboxes): the check below
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    if (opened !== null) {
      // a file deleted since it was opened reads '<path> (deleted)': still where it was opened
      if (!isInside(realRoot, opened)) throw new OutsideFolderError(opened);
      return;
    }
  }
  // no procfs: the descriptor must be the file the path leads to now, and that path must be inside
  const [st, again] = await Promise.all([fh.stat(), realpath(full)]);
  if (!isInside(realRoot, again)) throw new OutsideFolderError(again);
  const there = await stat(again);
  if (there.dev !== st.dev || there.ino !== st.ino) throw new RowFileError(`${name} changed while it was read; it is not read`);
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
