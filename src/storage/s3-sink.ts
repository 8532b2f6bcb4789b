import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Upload } from '@aws-sdk/lib-storage';
import type { CleanupOptions } from './local-sink.js';
import { checkBucket, s3Error, errorCode, formatS3Uri, httpStatus, loadS3Sdk, parseS3Uri, s3Client } from './s3-client.js';
import type { S3ConnectionOptions, S3Sdk } from './s3-client.js';
import type { Sink, SinkWriter } from './types.js';
import { FieldError } from '../types/errors.js';

/** Options of {@link S3Sink}: where the store is, and how big multipart pieces are. */
export interface S3SinkOptions extends S3ConnectionOptions {
  /** bytes per multipart piece (at least 5 MiB, S3's minimum). @defaultValue 8 MiB */
  partSize?: number;
  /** pieces uploaded at once per file; memory per writer is about partSize x queueSize. @defaultValue 4 */
  queueSize?: number;
  /** keys per listing request (ListObjectsV2, ListMultipartUploads). @defaultValue 1000 (S3's maximum) */
  pageSize?: number;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;

/**
 * A sink in an S3-compatible bucket under a key prefix. There is no rename in S3, so a writer
 * streams straight to the object's final key with a multipart upload that becomes visible only
 * when it completes (one PUT when the file is smaller than a part); an aborted writer aborts its
 * upload, so a key shows either nothing, the previous object, or the whole new one.
 */
export class S3Sink implements Sink {
  readonly uri: string;
  readonly bucket: string;
  /** key prefix without a trailing '/', '' for the bucket root */
  readonly prefix: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly pageSize: number;

  constructor(
    uri: string,
    private readonly options: S3SinkOptions = {},
  ) {
    const loc = parseS3Uri(uri, 'sink.uri');
    this.bucket = loc.bucket;
    try {
      this.prefix = splitKey(loc.key, `the key '${loc.key}' of ${uri}`).join('/');
    } catch (err) {
      throw new FieldError('sink.uri', (err as Error).message);
    }
    this.uri = formatS3Uri(this.bucket, this.prefix).replace(/\/$/, '');
    this.partSize = options.partSize ?? 8 * 1024 * 1024;
    if (!Number.isInteger(this.partSize) || this.partSize < MIN_PART_SIZE) {
      throw new Error(`options.partSize must be an integer of at least ${MIN_PART_SIZE} bytes (5 MiB, S3's minimum), got ${options.partSize}`);
    }
    this.queueSize = options.queueSize ?? 4;
    if (!Number.isInteger(this.queueSize) || this.queueSize < 1) {
      throw new Error(`options.queueSize must be a positive integer, got ${options.queueSize}`);
    }
    this.pageSize = options.pageSize ?? 1000;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1 || this.pageSize > 1000) {
      throw new Error(`options.pageSize must be an integer from 1 to 1000, got ${options.pageSize}`);
    }
  }

  /** The SDK and client, loaded on first use: planning only needs `resolve()`, which makes no request. */
  private async s3(): Promise<{ sdk: S3Sdk; client: S3Client }> {
    return { sdk: await loadS3Sdk(), client: await s3Client(this.options) };
  }

  /** `s3://bucket/prefix/key`. */
  resolve(key: string): string {
    return formatS3Uri(this.bucket, this.objectKey(key));
  }

  /**
   * Fails, naming the bucket, when it does not exist or cannot be reached; with `dataset`, also
   * when an object cannot be written under `<prefix>/<dataset>/` (a probe is put and deleted).
   */
  async check(dataset?: string): Promise<void> {
    await checkBucket(this.bucket, this.options, 'sink.uri');
    if (dataset === undefined) return;
    const key = this.objectKey(`${dataset}/.layertap-probe-${randomBytes(6).toString('hex')}`);
    const { sdk, client } = await this.s3();
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: new Uint8Array(0), ContentLength: 0 }));
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      const e = s3Error(err, `writing a probe object ${formatS3Uri(this.bucket, key)}`, this.options);
      throw new FieldError('sink.uri', `cannot write to ${formatS3Uri(this.bucket, this.objectKey(dataset))}/: ${e.message}`, { cause: err });
    }
  }

  /** Starts a (multipart) upload to `key`; the object appears only at commit(). */
  async createWriter(key: string): Promise<SinkWriter> {
    if (splitKey(key, `sink key '${key}'`).length === 0) throw new Error(`sink key '${key}' names the sink root, not a file`);
    const objectKey = this.objectKey(key);
    const [{ client }, { Upload }] = await Promise.all([this.s3(), import('@aws-sdk/lib-storage')]);
    return new S3ObjectWriter(Upload, client, this.bucket, objectKey, this.partSize, this.queueSize, this.options);
  }

  /** One PutObject: atomic in S3, so a reader sees all of `data` or nothing. */
  async put(key: string, data: Uint8Array | string): Promise<string> {
    const objectKey = this.objectKey(key);
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const { sdk, client } = await this.s3();
    try {
      await client.send(
        new sdk.PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: body, ContentType: contentType(objectKey), ContentLength: body.byteLength }),
      );
    } catch (err) {
      throw s3Error(err, `PutObject ${formatS3Uri(this.bucket, objectKey)}`, this.options);
    }
    return formatS3Uri(this.bucket, objectKey);
  }

  /** The object's bytes, or null when there is no such key. */
  async get(key: string): Promise<Uint8Array | null> {
    const objectKey = this.objectKey(key);
    const { sdk, client } = await this.s3();
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      if (!res.Body) return new Uint8Array();
      return await res.Body.transformToByteArray();
    } catch (err) {
      if (isNotFound(err)) return null;
      throw s3Error(err, `GetObject ${formatS3Uri(this.bucket, objectKey)}`, this.options);
    }
  }

  /** Whether an object exists under `key` (uploads in progress do not count). */
  async exists(key: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    const { sdk, client } = await this.s3();
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw s3Error(err, `HeadObject ${formatS3Uri(this.bucket, objectKey)}`, this.options);
    }
  }

  /** Keys (relative to the sink) of the objects whose key starts with `prefix`, sorted; every page of the listing. */
  async list(prefix: string): Promise<string[]> {
    const rootLen = this.prefix ? this.prefix.length + 1 : 0;
    const keys: string[] = [];
    const { sdk, client } = await this.s3();
    let token: string | undefined;
    do {
      let res;
      try {
        res = await client.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.listPrefix(prefix),
            MaxKeys: this.pageSize,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (err) {
        throw s3Error(err, `ListObjectsV2 ${this.resolve(prefix)}`, this.options);
      }
      for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key.slice(rootLen));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  /**
   * Aborts multipart uploads under `prefix` left by writers that crashed before commit or abort
   * (they are invisible but cost storage). Stores that do not implement ListMultipartUploads are
   * skipped: they have nothing this sink could clean.
   */
  async cleanup(prefix: string, options: CleanupOptions = {}): Promise<void> {
    const olderThan = options.olderThanMs ?? 0;
    const now = Date.now();
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    const { sdk, client } = await this.s3();
    do {
      let res;
      try {
        res = await client.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.listPrefix(prefix),
            MaxUploads: this.pageSize,
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        );
      } catch (err) {
        if (httpStatus(err) === 501 || errorCode(err) === 'NotImplemented') return;
        throw s3Error(err, `ListMultipartUploads ${this.resolve(prefix)}`, this.options);
      }
      for (const u of res.Uploads ?? []) {
        if (!u.Key || !u.UploadId) continue;
        if (olderThan > 0 && u.Initiated && now - u.Initiated.getTime() < olderThan) continue;
        try {
          await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
        } catch (err) {
          // another worker's cleanup may have aborted it first
          if (errorCode(err) !== 'NoSuchUpload' && httpStatus(err) !== 404) {
            throw s3Error(err, `AbortMultipartUpload ${formatS3Uri(this.bucket, u.Key)}`, this.options);
          }
        }
      }
      keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined;
      uploadIdMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  private objectKey(key: string): string {
    const rel = splitKey(key, `sink key '${key}'`).join('/');
    if (!this.prefix) return rel;
    return rel ? `${this.prefix}/${rel}` : this.prefix;
  }

  /** String-prefix semantics as in LocalSink.list: 'a/b' matches 'a/b/c' and 'a/bc'; a trailing '/' is kept. */
  private listPrefix(prefix: string): string {
    const rel = splitKey(prefix, `sink key '${prefix}'`).join('/');
    const trail = prefix.endsWith('/') && rel ? '/' : '';
    if (!this.prefix) return rel + trail;
    return rel ? `${this.prefix}/${rel}${trail}` : `${this.prefix}/`;
  }
}

/** Distinguishes our own abort from a failure, for the message of a rejected upload. */
class WriterAborted extends Error {
  constructor() {
    super('writer aborted');
    this.name = 'WriterAborted';
  }
}

/**
 * Streams into `Upload` through a PassThrough: Upload cuts the stream into parts and sends them
 * while more is written. Aborting destroys the stream with an error, which makes Upload stop and
 * send AbortMultipartUpload itself before `done()` settles, so abort() returns only once the
 * store has dropped the parts.
 */
class S3ObjectWriter implements SinkWriter {
  private readonly body = new PassThrough({ highWaterMark: 1024 * 1024 });
  private readonly done: Promise<unknown>;
  private failure: unknown = null;
  private bytes = 0;
  private state: 'open' | 'committed' | 'aborted' = 'open';
  private readonly uri: string;

  constructor(
    UploadClass: typeof Upload,
    client: S3Client,
    bucket: string,
    key: string,
    partSize: number,
    queueSize: number,
    private readonly options: S3ConnectionOptions,
  ) {
    this.uri = formatS3Uri(bucket, key);
    const upload = new UploadClass({
      client,
      params: { Bucket: bucket, Key: key, Body: this.body, ContentType: contentType(key) },
      partSize,
      queueSize,
      leavePartsOnError: false,
    });
    this.done = upload.done();
    // observed in commit/abort; until then a failure is kept so write() can report it
    this.done.catch((err: unknown) => {
      this.failure = err;
      this.body.destroy();
    });
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new Error(`cannot write to ${this.uri}: the writer is ${this.state}`);
    if (this.failure) throw this.uploadError(this.failure);
    if (chunk.byteLength === 0) return;
    // the caller may reuse its buffer once write() resolves, but Upload keeps chunks until a part is full
    const copy = Buffer.from(chunk);
    this.bytes += copy.byteLength;
    if (!this.body.write(copy)) await this.drained();
  }

  async commit(): Promise<{ uri: string; bytes: number }> {
    if (this.state !== 'open') throw new Error(`cannot commit ${this.uri}: the writer is ${this.state}`);
    this.state = 'committed';
    this.body.end();
    try {
      await this.done;
    } catch (err) {
      throw this.uploadError(err);
    }
    return { uri: this.uri, bytes: this.bytes };
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.body.destroy(new WriterAborted());
    await this.done.catch(() => undefined);
  }

  private drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        this.body.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.body.off('drain', onDrain);
        // closed without draining: the upload failed; done's rejection says why
        this.done.then(
          () => reject(new Error(`upload to ${this.uri} ended early`)),
          (err: unknown) => reject(this.uploadError(err)),
        );
      };
      this.body.once('drain', onDrain);
      this.body.once('close', onClose);
    });
  }

  private uploadError(err: unknown): Error {
    return s3Error(err, 'multipart upload', this.options, `cannot upload ${this.uri}: `);
  }
}

/** No such key; a missing bucket is an error, not an absent object (HEAD answers cannot tell them apart). */
function isNotFound(err: unknown): boolean {
  const code = errorCode(err);
  if (code === 'NoSuchBucket') return false;
  return httpStatus(err) === 404 || code === 'NoSuchKey' || code === 'NotFound';
}

function contentType(key: string): string {
  if (key.endsWith('.json')) return 'application/json';
  if (key.endsWith('.arrow')) return 'application/vnd.apache.arrow.file';
  if (key.endsWith('.parquet')) return 'application/vnd.apache.parquet';
  return 'application/octet-stream';
}

/** Non-empty '/'-separated segments; '.', '..' and NUL are refused so a key cannot climb out of the prefix. */
function splitKey(key: string, what: string): string[] {
  const parts = key.split('/').filter((p) => p.length > 0);
  for (const p of parts) {
    if (p === '..' || p === '.' || p.includes('\0')) {
      throw new Error(`${what} is not a plain relative key (no '.', '..' or NUL segments)`);
    }
  }
  return parts;
}
