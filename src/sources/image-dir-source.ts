import { opendir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULTS } from '../config/defaults.js';
import { checkLimit } from './limits.js';
import { compareCodePoints } from './path-order.js';
import { OutsideFolderError, readRowFileInside, RowFileError } from './row-file.js';
import { countIds, planIdStream, readAhead } from './shards.js';
import type { ShardSpec, Source, SourceRow } from './types.js';
import { FieldError } from '../types/errors.js';

/** Formats the prebuilt sharp/libvips decodes (BMP, HEIC and SVG are left out on purpose). */
export const DEFAULT_IMAGE_EXTENSIONS: readonly string[] = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif'];

export interface ImageDirSourceOptions {
  /** file extensions to include, with or without the dot, any case. @defaultValue DEFAULT_IMAGE_EXTENSIONS */
  extensions?: readonly string[];
  /** files read concurrently ahead of the consumer (order is kept). @defaultValue 8 */
  readAhead?: number;
  /** largest file read; a larger one is an error row. @defaultValue 256 MiB */
  maxRowBytes?: number;
}

/**
 * A local directory of image files, walked recursively. Row ids are POSIX paths relative to the
 * root, sorted by code point (= UTF-8 byte order), so every worker plans the same shards.
 * Dot-files and dot-directories are skipped; symlinked directories are not followed (a
 * symlink loop or a link to `/` must not turn a dataset into the whole disk).
 */
export class ImageDirSource implements Source {
  readonly uri: string;
  readonly type = 'images' as const;
  private readonly extensions: ReadonlySet<string>;
  private readonly readAhead: number;
  private readonly maxRowBytes: number;
  private realRoot: string | null = null;

  constructor(root: string, options: ImageDirSourceOptions = {}) {
    this.uri = path.resolve(root);
    const exts = options.extensions ?? DEFAULT_IMAGE_EXTENSIONS;
    if (exts.length === 0) {
      throw new FieldError('source.extensions', 'give at least one file extension (e.g. ["jpg", "png"])');
    }
    this.extensions = new Set(exts.map(normaliseExtension));
    const readAhead = options.readAhead ?? 8;
    if (!Number.isInteger(readAhead) || readAhead < 1) {
      throw new Error(`ImageDirSource readAhead must be a positive integer, got ${readAhead}`);
    }
    this.readAhead = readAhead;
    this.maxRowBytes = checkLimit('source.maxRowBytes', options.maxRowBytes, DEFAULTS.job.maxRowBytes);
  }

  /** Always null: images are decoded and resized in the pool threads. */
  async rowShape(): Promise<null> {
    return null;
  }

  /** Fails when the root is not a readable folder. */
  async check(): Promise<void> {
    try {
      await opendir(this.uri).then((d) => d.close());
    } catch (err) {
      throw new FieldError('source.uri', `cannot read the folder ${this.uri}: ${describeFsError(err)}`, { cause: err });
    }
  }

  /** Number of image files under the root (a walk of the folders; no list is kept). */
  count(): Promise<number> {
    return countIds(this.list());
  }

  /** Yields shards of at most `shardSize` consecutive ids in sorted order, as the folders are walked. */
  plan(shardSize: number): AsyncIterable<ShardSpec> {
    return planIdStream(this.list(), shardSize);
  }

  /**
   * Reads the shard's files in order; unreadable or escaping files, anything that is not a
   * regular file (a FIFO, a device, a folder), and files over `maxRowBytes` become `error` rows.
   */
  async *read(shard: ShardSpec): AsyncIterable<SourceRow> {
    const ids = shard.ids;
    if (!ids) {
      throw new Error(`shard ${shard.index} of ${this.uri} has no ids: image shards must come from ImageDirSource.plan()`);
    }
    yield* readAhead(ids, this.readAhead, (id) => this.readOne(id));
  }

  async close(): Promise<void> {
    this.realRoot = null;
  }

  private async readOne(id: string): Promise<SourceRow> {
    if (!isSafeRelativeId(id)) {
      return { id, kind: 'error', stage: 'read', message: `${id}: path leaves the dataset root ${this.uri}` };
    }
    const full = path.join(this.uri, ...id.split('/'));
    try {
      return { id, kind: 'bytes', bytes: await readRowFileInside(await this.getRealRoot(), full, this.maxRowBytes) };
    } catch (err) {
      if (err instanceof OutsideFolderError) {
        return { id, kind: 'error', stage: 'read', message: `${id}: symlink resolves to ${err.resolved}, which leaves the dataset root ${this.uri}` };
      }
      if (err instanceof RowFileError) return { id, kind: 'error', stage: 'read', message: `${id}: ${err.message}` };
      return { id, kind: 'error', stage: 'read', message: `${id}: cannot read ${full}: ${describeFsError(err)}` };
    }
  }

  private async getRealRoot(): Promise<string> {
    this.realRoot ??= await realpath(this.uri);
    return this.realRoot;
  }

  /** The ids under the root in code-point order, streamed: at most one folder's names per depth are held. */
  private async *list(): AsyncGenerator<string> {
    try {
      yield* this.walk(this.uri, '');
    } catch (err) {
      throw new FieldError('source.uri', `cannot list images under ${this.uri}: ${describeFsError(err)}`);
    }
  }

  private async *walk(dir: string, rel: string): AsyncGenerator<string> {
    const entries: Array<{ key: string; name: string; folder: boolean }> = [];
    // opendir streams entries instead of materialising huge directories twice
    const handle = await opendir(dir);
    for await (const entry of handle) {
      if (entry.name.startsWith('.')) continue;
      if (entry.isDirectory()) entries.push({ key: `${entry.name}/`, name: entry.name, folder: true });
      else if ((entry.isFile() || entry.isSymbolicLink()) && this.extensions.has(extensionOf(entry.name))) {
        entries.push({ key: entry.name, name: entry.name, folder: false });
      }
    }
    // a folder sorts as its name plus '/', so that sorting each folder gives the code-point order
    // of whole relative paths ('a.jpg' < 'a/b.jpg' < 'a0.jpg') without sorting them all at once
    entries.sort((x, y) => compareCodePoints(x.key, y.key));
    for (const e of entries) {
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      if (e.folder) yield* this.walk(path.join(dir, e.name), relPath);
      else yield relPath;
    }
  }
}

function normaliseExtension(ext: string): string {
  return ext.replace(/^\./, '').toLowerCase();
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
}

/** Ids travel through the queue as JSON, so they are re-checked before touching the disk. */
export function isSafeRelativeId(id: string): boolean {
  if (id.length === 0 || id.includes('\0')) return false;
  // a backslash is an ordinary file-name character on POSIX but a separator on Windows
  if (path.sep === '\\' && id.includes('\\')) return false;
  if (id.startsWith('/') || path.isAbsolute(id)) return false;
  return id.split('/').every((seg) => seg !== '..' && seg !== '.' && seg !== '');
}

/** A short reason for a failed file-system call ('no such file or directory (ENOENT)'). */
export function describeFsError(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err) {
    const code = (err as NodeJS.ErrnoException).code;
    switch (code) {
      case 'ENOENT':
        return 'no such file or directory (ENOENT)';
      case 'EACCES':
      case 'EPERM':
        return `permission denied (${code})`;
      case 'EISDIR':
        return 'is a directory (EISDIR)';
      case 'ELOOP':
        return 'too many levels of symbolic links (ELOOP)';
      default:
        break;
    }
  }
  return err instanceof Error ? err.message : String(err);
}
