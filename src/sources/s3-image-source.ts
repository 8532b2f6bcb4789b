import { Readable } from 'node:stream';
import { checkBucket, describeS3Error, formatS3Uri, loadS3Sdk, s3Client } from '../storage/s3-client.js';
import type { S3ConnectionOptions } from '../storage/s3-client.js';
import { DEFAULT_IMAGE_EXTENSIONS } from './image-dir-source.js';
import { DEFAULTS } from '../config/defaults.js';
import { checkLimit } from './limits.js';
import { compareCodePoints } from './path-order.js';
import { tooLarge } from './row-file.js';
import { countIds, planIdStream, readAhead } from './shards.js';
import type { ShardSpec, Source, SourceRow } from './types.js';
import { FieldError } from '../types/errors.js';

/** Options of {@link S3ImageSource}. */
export interface S3ImageSourceOptions {
  /** file extensions to include, with or without the dot, any case. @defaultValue DEFAULT_IMAGE_EXTENSIONS */
  extensions?: readonly string[];
  /** objects fetched concurrently ahead of the consumer (order is kept). @defaultValue 16 */
  readAhead?: number;
  /** keys per ListObjectsV2 page. @defaultValue 1000 (S3's maximum) */
  pageSize?: number;
  /** largest object read; a larger one is an error row, and its body is not downloaded. @defaultValue 256 MiB */
  maxRowBytes?: number;
  connection?: S3ConnectionOptions;
}

/**
 * Images under an S3 key prefix, like a folder: `s3://bucket/photos` lists every key under
 * `photos/` (all pages of ListObjectsV2). Row ids are keys relative to the prefix, sorted by code
 * point (the order S3 lists in), so every worker plans the same shards. Keys with a segment
 * starting with '.' and "folder" marker keys ending in '/' are skipped, as dot-files are in folders.
 */
export class S3ImageSource implements Source {
  readonly uri: string;
  readonly type = 'images' as const;
  /** '' (bucket root) or a prefix ending in '/' */
  private readonly prefix: string;
  private readonly extensions: ReadonlySet<string>;
  private readonly readAhead: number;
  private readonly pageSize: number;
  private readonly maxRowBytes: number;
  private readonly connection: S3ConnectionOptions;

  constructor(
    readonly bucket: string,
    prefix: string,
    options: S3ImageSourceOptions = {},
  ) {
    this.prefix = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.uri = formatS3Uri(bucket, this.prefix);
    const exts = options.extensions ?? DEFAULT_IMAGE_EXTENSIONS;
    if (exts.length === 0) throw new FieldError('source.extensions', 'give at least one file extension (e.g. ["jpg", "png"])');
    this.extensions = new Set(exts.map((e) => e.replace(/^\./, '').toLowerCase()));
    const readAhead = options.readAhead ?? 16;
    if (!Number.isInteger(readAhead) || readAhead < 1) throw new Error(`S3ImageSource readAhead must be a positive integer, got ${readAhead}`);
    this.readAhead = readAhead;
    this.pageSize = options.pageSize ?? 1000;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1 || this.pageSize > 1000) {
      throw new Error(`S3ImageSource pageSize must be an integer from 1 to 1000, got ${options.pageSize}`);
    }
    this.maxRowBytes = checkLimit('source.maxRowBytes', options.maxRowBytes, DEFAULTS.job.maxRowBytes);
    this.connection = options.connection ?? {};
  }

  /** Always null: images are decoded in the pool threads. */
  async rowShape(): Promise<null> {
    return null;
  }

  /** Fails, naming the bucket, when it does not exist or cannot be reached. */
  async check(): Promise<void> {
    await checkBucket(this.bucket, this.connection, 'source.uri');
  }

  count(): Promise<number> {
    return countIds(this.list());
  }

  /** Shards of consecutive keys, as the listing pages come: no list of every key is held. */
  plan(shardSize: number): AsyncIterable<ShardSpec> {
    return planIdStream(this.list(), shardSize);
  }

  /** Fetches the shard's objects (several at once), yielding them in order; a failed fetch is an `error` row. */
  async *read(shard: ShardSpec): AsyncIterable<SourceRow> {
    const ids = shard.ids;
    if (!ids) throw new Error(`shard ${shard.index} of ${this.uri} has no ids: image shards must come from S3ImageSource.plan()`);
    yield* readAhead(ids, this.readAhead, (id) => this.readOne(id));
  }

  async close(): Promise<void> {
    // nothing held: the listing streams and the S3 client belongs to the process
  }

  private async readOne(id: string): Promise<SourceRow> {
    // ids travel through the queue as JSON: never let one climb out of the prefix
    if (id.length === 0 || id.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      return { id, kind: 'error', stage: 'read', message: `${id}: not a key under ${this.uri}` };
    }
    const key = this.prefix + id;
    try {
      const [sdk, client] = await Promise.all([loadS3Sdk(), s3Client(this.connection)]);
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const size = res.ContentLength;
      if (size !== undefined && size > this.maxRowBytes) {
        if (res.Body instanceof Readable) res.Body.destroy();
        return { id, kind: 'error', stage: 'read', message: `${id}: ${tooLarge(formatS3Uri(this.bucket, key), size, this.maxRowBytes)}` };
      }
      const bytes = res.Body ? await res.Body.transformToByteArray() : new Uint8Array();
      if (bytes.length > this.maxRowBytes) {
        return { id, kind: 'error', stage: 'read', message: `${id}: ${tooLarge(formatS3Uri(this.bucket, key), bytes.length, this.maxRowBytes)}` };
      }
      return { id, kind: 'bytes', bytes };
    } catch (err) {
      return { id, kind: 'error', stage: 'read', message: `${id}: ${describeS3Error(err, `GetObject ${formatS3Uri(this.bucket, key)}`, this.connection)}` };
    }
  }

  /**
   * The image keys under the prefix, relative to it, page by page. S3 lists keys in UTF-8 byte
   * order, which is the code-point order the plan needs, so nothing is sorted here; a server
   * that lists in another order is refused rather than planned in an order workers disagree on.
   */
  private async *list(): AsyncGenerator<string> {
    let last: string | null = null;
    const [sdk, client] = await Promise.all([loadS3Sdk(), s3Client(this.connection)]);
    let token: string | undefined;
    do {
      let res;
      try {
        res = await client.send(
          new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: this.pageSize, ...(token ? { ContinuationToken: token } : {}) }),
        );
      } catch (err) {
        throw new FieldError('source.uri', `${describeS3Error(err, `ListObjectsV2 ${this.uri}`, this.connection)}`, { cause: err });
      }
      for (const o of res.Contents ?? []) {
        const key = o.Key;
        if (!key || key.endsWith('/')) continue;
        const rel = key.slice(this.prefix.length);
        const segments = rel.split('/');
        if (segments.some((s) => s.startsWith('.') || s === '')) continue;
        const name = segments[segments.length - 1] as string;
        const dot = name.lastIndexOf('.');
        if (dot <= 0 || !this.extensions.has(name.slice(dot + 1).toLowerCase())) continue;
        if (last !== null && compareCodePoints(last, rel) >= 0) {
          throw new FieldError('source.uri', `${this.uri}: the server listed '${rel}' after '${last}', not in UTF-8 byte order as S3 does`);
        }
        last = rel;
        yield rel;
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }
}
