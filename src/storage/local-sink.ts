import { randomBytes } from 'node:crypto';
import { mkdir, open, opendir, readFile, rename, rmdir, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Sink, SinkWriter } from './types.js';
import { FieldError } from '../types/errors.js';

/** Temp files of writers: `.<basename>.<random>.tmp`, in the same folder as the final file so rename is atomic. */
const TEMP_RE = /^\..+\.tmp$/;

export interface CleanupOptions {
  /** only remove temp files not modified for this long, so live writers elsewhere are spared. @defaultValue 0 */
  olderThanMs?: number;
}

/**
 * A sink on the local file system (or any mounted one). Files are written to a hidden temp
 * name next to their final name, fsynced, then renamed: readers see either the old file or
 * the whole new one, and a retried shard replaces its part instead of duplicating it.
 */
export class LocalSink implements Sink {
  readonly uri: string;

  constructor(root: string) {
    this.uri = path.resolve(root);
  }

  /** Absolute path of a '/'-separated key under the root. */
  resolve(key: string): string {
    return path.join(this.uri, ...splitKey(key));
  }

  /**
   * Fails when the root exists but is not a folder (a missing root is created on first write);
   * with `dataset`, also when a file cannot be created and removed in `<root>/<dataset>/` (a
   * file in its place, a read-only folder), so that such a sink is refused before any work.
   */
  async check(dataset?: string): Promise<void> {
    try {
      if (!(await stat(this.uri)).isDirectory()) throw new FieldError('sink.uri', `${this.uri} exists and is not a folder`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (dataset === undefined) return;
    const dir = this.resolve(dataset);
    const probe = path.join(dir, `.layertap-probe-${randomBytes(6).toString('hex')}.tmp`);
    // mkdir gives the first folder it had to create: the probe leaves no folder behind
    let created: string | undefined;
    try {
      created = await mkdir(dir, { recursive: true });
      await (await open(probe, 'wx')).close();
      await unlink(probe);
    } catch (err) {
      throw new FieldError('sink.uri', `cannot write in ${dir}: ${(err as Error).message}`, { cause: err });
    } finally {
      if (created !== undefined) await removeEmptyFolders(dir, created);
    }
  }

  /** Opens a temp file next to `key`; nothing appears under `key` until commit(). */
  async createWriter(key: string): Promise<SinkWriter> {
    const final = this.resolve(key);
    if (splitKey(key).length === 0) throw new Error(`sink key '${key}' names the sink root, not a file`);
    const dir = path.dirname(final);
    await mkdir(dir, { recursive: true }).catch((err: Error) => {
      throw new FieldError('sink.uri', `cannot create folder ${dir}: ${err.message}`, { cause: err });
    });
    const temp = path.join(dir, `.${path.basename(final)}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(temp, 'wx').catch((err: Error) => {
      throw new FieldError('sink.uri', `cannot create ${temp}: ${err.message}`, { cause: err });
    });
    return new LocalFileWriter(fh, temp, final);
  }

  /** Writes a small file atomically (temp + fsync + rename) and returns its path. */
  async put(key: string, data: Uint8Array | string): Promise<string> {
    const w = await this.createWriter(key);
    try {
      await w.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      return (await w.commit()).uri;
    } catch (err) {
      await w.abort().catch(() => undefined);
      throw err;
    }
  }

  /** The file's bytes, or null when it does not exist. */
  async get(key: string): Promise<Uint8Array | null> {
    try {
      const buf = await readFile(this.resolve(key));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Whether a committed file exists under `key`. */
  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.resolve(key))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Committed keys starting with `prefix` (string-prefix semantics, as in object stores), sorted.
   * Hidden files and folders, which include every temp file, are not listed.
   */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    await this.walk(prefix, (key, name) => {
      if (!name.startsWith('.')) keys.push(key);
    });
    return keys.sort();
  }

  /** Removes temp files left by aborted or crashed writers under `prefix`. */
  async cleanup(prefix: string, options: CleanupOptions = {}): Promise<void> {
    const olderThan = options.olderThanMs ?? 0;
    const temps: string[] = [];
    await this.walk(prefix, (key, name) => {
      if (TEMP_RE.test(name)) temps.push(key);
    });
    const now = Date.now();
    for (const key of temps) {
      const file = this.resolve(key);
      try {
        if (olderThan > 0 && now - (await stat(file)).mtimeMs < olderThan) continue;
        await unlink(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  /** Visits every file whose key starts with `prefix`, skipping hidden folders. */
  private async walk(prefix: string, visit: (key: string, name: string) => void): Promise<void> {
    const parts = splitKey(prefix);
    const want = parts.join('/') + (prefix.endsWith('/') && parts.length > 0 ? '/' : '');
    // 'a/b/par' starts in folder 'a/b'; 'a/b' starts in 'a' because 'a/bc/...' matches it too
    const startParts = prefix.endsWith('/') || parts.length === 0 ? parts : parts.slice(0, -1);
    const visitDir = async (relParts: string[]): Promise<void> => {
      let dir;
      try {
        dir = await opendir(path.join(this.uri, ...relParts));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw err;
      }
      const subdirs: string[] = [];
      for await (const entry of dir) {
        const key = [...relParts, entry.name].join('/');
        if (entry.isDirectory()) {
          const dirKey = `${key}/`;
          // only descend where some key could still match the prefix
          if (!entry.name.startsWith('.') && (dirKey.startsWith(want) || want.startsWith(dirKey))) {
            subdirs.push(entry.name);
          }
        } else if (entry.isFile() && key.startsWith(want)) {
          visit(key, entry.name);
        }
      }
      for (const name of subdirs) await visitDir([...relParts, name]);
    };
    await visitDir(startParts);
  }
}

class LocalFileWriter implements SinkWriter {
  private bytes = 0;
  private state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(
    private readonly fh: FileHandle,
    private readonly temp: string,
    private readonly final: string,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new Error(`cannot write to ${this.final}: the writer is ${this.state}`);
    let done = 0;
    while (done < chunk.byteLength) {
      const { bytesWritten } = await this.fh.write(chunk, done, chunk.byteLength - done);
      done += bytesWritten;
    }
    this.bytes += chunk.byteLength;
  }

  async commit(): Promise<{ uri: string; bytes: number }> {
    if (this.state !== 'open') throw new Error(`cannot commit ${this.final}: the writer is ${this.state}`);
    this.state = 'committed';
    try {
      // data must be on disk before the rename makes it visible, or a crash could expose a torn file
      await this.fh.sync();
      await this.fh.close();
      await rename(this.temp, this.final);
    } catch (err) {
      await this.fh.close().catch(() => undefined);
      await unlink(this.temp).catch(() => undefined);
      throw new Error(`cannot commit ${this.final}: ${(err as Error).message}`, { cause: err });
    }
    await syncDir(path.dirname(this.final));
    return { uri: this.final, bytes: this.bytes };
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    await this.fh.close().catch(() => undefined);
    await unlink(this.temp).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

/** Persists the rename itself; some file systems refuse fsync on folders, which is fine to ignore. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // best effort
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function splitKey(key: string): string[] {
  const parts = key.split('/').filter((p) => p.length > 0);
  for (const p of parts) {
    if (p === '..' || p === '.' || p.includes('\\') || p.includes('\0')) {
      throw new Error(`sink key '${key}' is not a plain relative path (no '.', '..', '\\' or NUL segments)`);
    }
  }
  return parts;
}

/** Removes `dir` and its parents up to and including `top`, each only if empty (a writer elsewhere may have filled one). */
async function removeEmptyFolders(dir: string, top: string): Promise<void> {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
    if (d === top || path.dirname(d) === d) return;
  }
}
