import { mkdtempSync, rmSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { checkBucket, describeS3Error, s3Error, errorCode, formatS3Uri, httpStatus, loadS3Sdk, s3Client } from '../storage/s3-client.js';
import type { S3ConnectionOptions } from '../storage/s3-client.js';
import { DEFAULTS } from '../config/defaults.js';
import { checkLimit } from './limits.js';
import { RowFileError, tooLarge } from './row-file.js';
import type { TableLocation } from './table-location.js';
import { FieldError } from '../types/errors.js';

/**
 * A table object in S3. The readers need random access (Parquet footers, Arrow batch offsets),
 * so the object is downloaded once per worker process to a temp file (keyed by its ETag, so a
 * replaced object is fetched again) and shared by the shards that process reads; the files go
 * when the process exits. Image paths in the table are keys relative to the object's "folder".
 */
export class S3TableLocation implements TableLocation {
  readonly uri: string;
  private readonly folder: string;
  private lease: Promise<Lease> | null = null;
  private readonly maxRowBytes: number;

  /** `options.maxRowBytes`: largest image object an image-path column may name. @defaultValue 256 MiB */
  constructor(
    private readonly bucket: string,
    private readonly key: string,
    private readonly connection: S3ConnectionOptions = {},
    options: { maxRowBytes?: number } = {},
  ) {
    this.maxRowBytes = checkLimit('source.maxRowBytes', options.maxRowBytes, DEFAULTS.job.maxRowBytes);
    this.uri = formatS3Uri(bucket, key);
    const slash = key.lastIndexOf('/');
    this.folder = slash < 0 ? '' : key.slice(0, slash + 1);
  }

  /** The bucket must exist and the object must be there. */
  async check(): Promise<void> {
    await checkBucket(this.bucket, this.connection, 'source.uri');
    await this.head();
  }

  async localPath(): Promise<string> {
    if (!this.lease) {
      const loading = this.head().then((etag) => acquire(this.bucket, this.key, etag, this.connection));
      this.lease = loading;
      loading.catch(() => {
        if (this.lease === loading) this.lease = null;
      });
    }
    return (await this.lease).file;
  }

  async readRelative(rel: string): Promise<Uint8Array> {
    if (rel.length === 0 || rel.startsWith('/') || rel.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      throw new Error(`path '${rel}' leaves the table's prefix ${formatS3Uri(this.bucket, this.folder)} (give keys relative to it, without '..')`);
    }
    const key = this.folder + rel;
    try {
      const [sdk, client] = await Promise.all([loadS3Sdk(), s3Client(this.connection)]);
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (res.ContentLength !== undefined && res.ContentLength > this.maxRowBytes) {
        if (res.Body instanceof Readable) res.Body.destroy();
        throw new RowFileError(tooLarge(formatS3Uri(this.bucket, key), res.ContentLength, this.maxRowBytes));
      }
      const bytes = res.Body ? await res.Body.transformToByteArray() : new Uint8Array();
      if (bytes.length > this.maxRowBytes) throw new RowFileError(tooLarge(formatS3Uri(this.bucket, key), bytes.length, this.maxRowBytes));
      return bytes;
    } catch (err) {
      if (err instanceof RowFileError) throw err;
      throw s3Error(err, `GetObject ${formatS3Uri(this.bucket, key)}`, this.connection);
    }
  }

  async close(): Promise<void> {
    const lease = this.lease;
    this.lease = null;
    if (lease) await lease.then((l) => l.release()).catch(() => undefined);
  }

  private async head(): Promise<string> {
    try {
      const [sdk, client] = await Promise.all([loadS3Sdk(), s3Client(this.connection)]);
      const res = await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.key }));
      return res.ETag ?? `${res.ContentLength ?? 0}-${res.LastModified?.getTime() ?? 0}`;
    } catch (err) {
      if (httpStatus(err) === 404 || errorCode(err) === 'NotFound' || errorCode(err) === 'NoSuchKey') {
        throw new FieldError('source.uri', `no object ${this.uri} (bucket '${this.bucket}' has no key '${this.key}')`, { cause: err });
      }
      throw new FieldError('source.uri', `${describeS3Error(err, `HeadObject ${this.uri}`, this.connection)}`, { cause: err });
    }
  }
}

interface Lease {
  file: string;
  release: () => void;
}

interface Entry {
  file: Promise<string>;
  users: number;
  lastUsed: number;
}

/** Downloaded objects not in use that are kept for the next shard; older ones are deleted. */
const KEEP_IDLE = 2;
/**
 * The downloads of this process, shared by the shards (and runs) that read the same object: an
 * entry lives while a shard holds it and, idle, while it is one of the KEEP_IDLE newest;
 * clearS3Downloads() removes them all, at exit at the latest.
 */
const cache = new Map<string, Entry>();
let cacheDir: string | null = null;
let downloads = 0;

function dir(): string {
  if (!cacheDir) {
    cacheDir = mkdtempSync(path.join(tmpdir(), 'layertap-s3-'));
    process.once('exit', clearS3Downloads);
  }
  return cacheDir;
}

/** Deletes every downloaded table object now (they also go when the process exits). */
export function clearS3Downloads(): void {
  cache.clear();
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  cacheDir = null;
}

async function acquire(bucket: string, key: string, etag: string, connection: S3ConnectionOptions): Promise<Lease> {
  const id = JSON.stringify([connection.endpoint ?? '', bucket, key, etag]);
  let entry = cache.get(id);
  if (!entry) {
    const file = download(bucket, key, connection);
    entry = { file, users: 0, lastUsed: Date.now() };
    cache.set(id, entry);
    file.catch(() => cache.delete(id));
  }
  entry.users++;
  const held = entry;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    held.users--;
    held.lastUsed = Date.now();
    evict();
  };
  try {
    return { file: await held.file, release };
  } catch (err) {
    release();
    throw err;
  }
}

function evict(): void {
  const idle = [...cache.entries()].filter(([, e]) => e.users === 0).sort((a, b) => b[1].lastUsed - a[1].lastUsed);
  for (const [id, e] of idle.slice(KEEP_IDLE)) {
    cache.delete(id);
    void e.file.then((f) => unlink(f)).catch(() => undefined);
  }
}

async function download(bucket: string, key: string, connection: S3ConnectionOptions): Promise<string> {
  const uri = formatS3Uri(bucket, key);
  const base = path.join(dir(), `${downloads++}-${path.basename(key).replace(/[^A-Za-z0-9._-]/g, '_')}`);
  const temp = `${base}.part`;
  try {
    const [sdk, client] = await Promise.all([loadS3Sdk(), s3Client(connection)]);
    const res = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!(res.Body instanceof Readable)) throw new Error('the response has no readable body');
    await pipeline(res.Body, createWriteStream(temp));
    const size = (await stat(temp)).size;
    if (res.ContentLength !== undefined && size !== res.ContentLength) {
      throw new Error(`downloaded ${size} bytes, the object has ${res.ContentLength}`);
    }
    await rename(temp, base);
    return base;
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw new FieldError('source.uri', `cannot download ${uri}: ${describeS3Error(err, 'GetObject', connection)}`, { cause: err });
  }
}
