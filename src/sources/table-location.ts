import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { describeFsError, isSafeRelativeId } from './image-dir-source.js';
import { DEFAULTS } from '../config/defaults.js';
import { checkLimit } from './limits.js';
import { OutsideFolderError, readRowFileInside, RowFileError } from './row-file.js';
import { FieldError } from '../types/errors.js';

/**
 * Where a table lives: it gives the readers a local file with random access, and resolves the
 * relative paths of an image-path column against the table's folder (or key prefix).
 */
export interface TableLocation {
  readonly uri: string;
  /** fails with a message naming `source.uri` when the table cannot be read */
  check(): Promise<void>;
  /** a local file holding the table's bytes */
  localPath(): Promise<string>;
  /** bytes of `rel`, relative to the table's folder (a regular file or object of at most `maxRowBytes`); throws an Error saying why not */
  readRelative(rel: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A table on the local file system; image paths are read from its folder and may not leave it. */
export class LocalTableLocation implements TableLocation {
  readonly uri: string;
  private readonly folder: string;
  private readonly maxRowBytes: number;
  private realFolder: Promise<string> | null = null;

  /** `options.maxRowBytes`: largest image file an image-path column may name. @defaultValue 256 MiB */
  constructor(file: string, options: { maxRowBytes?: number } = {}) {
    this.uri = path.resolve(file);
    this.folder = path.dirname(this.uri);
    this.maxRowBytes = checkLimit('source.maxRowBytes', options.maxRowBytes, DEFAULTS.job.maxRowBytes);
  }

  async check(): Promise<void> {
    let isFile: boolean;
    try {
      isFile = (await stat(this.uri)).isFile();
    } catch (err) {
      throw new FieldError('source.uri', `cannot read ${this.uri}: ${describeFsError(err)}`, { cause: err });
    }
    if (!isFile) throw new FieldError('source.uri', `${this.uri} is not a file`);
  }

  async localPath(): Promise<string> {
    return this.uri;
  }

  async readRelative(rel: string): Promise<Uint8Array> {
    if (!isSafeRelativeId(rel)) throw new Error(`path '${rel}' leaves the table's folder ${this.folder} (give paths relative to it, without '..')`);
    const full = path.join(this.folder, ...rel.split('/'));
    try {
      this.realFolder ??= realpath(this.folder);
      return await readRowFileInside(await this.realFolder, full, this.maxRowBytes);
    } catch (err) {
      if (err instanceof OutsideFolderError) throw new Error(`path '${rel}' resolves to ${err.resolved}, which leaves the table's folder ${this.folder}`);
      if (err instanceof RowFileError) throw err;
      throw new Error(`cannot read ${full}: ${describeFsError(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.realFolder = null;
  }
}
