import crypto, { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { destroyS3Clients } from '../../src/storage/s3-client.js';
import { clearS3Downloads } from '../../src/sources/s3-table-location.js';

// s3rver is CommonJS and ships no types; this is the part of it the tests use
interface S3rverLike {
  middleware: Array<(ctx: KoaContext, next: () => Promise<void>) => Promise<void>>;
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: { closeAllConnections(): void };
}
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  status: number;
  body: unknown;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverLike;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

/** s3rver's default account: requests must name this access key (s3rver does not verify SigV4 signatures). */
const ACCESS_KEY = 'S3RVER';

/** A multipart upload that has been started and neither completed nor aborted. */
export interface PendingUpload {
  key: string;
  uploadId: string;
}

/** A real S3 protocol server (s3rver) on a free loopback port, with its own temp directory. */
export interface S3TestServer {
  endpoint: string;
  /** where s3rver keeps buckets and objects */
  dir: string;
  /** a path-style client for the server */
  client: S3Client;
  /** multipart uploads in progress, read from the server's own store on disk */
  pendingUploads(bucket: string): Promise<PendingUpload[]>;
  put(bucket: string, key: string, body: Uint8Array | string): Promise<void>;
  get(bucket: string, key: string): Promise<Uint8Array>;
  keys(bucket: string, prefix?: string): Promise<string[]>;
  /**
   * an outage: the server stops listening and drops every open connection at once, as a killed
   * process would; what it stored stays on disk
   */
  down(): Promise<void>;
  /** the server back on the same port, over the same directory */
  up(): Promise<void>;
  /** stops the server, removes its directory and restores the environment */
  close(): Promise<void>;
}

/**
 * Starts s3rver with `buckets` on 127.0.0.1:<free port>, and points the AWS credential chain of
 * this process at its account. s3rver (3.7) does not implement ListMultipartUploads nor
 * AbortMultipartUpload, which the sink uses to clean up; the two are added here as handlers
 * over s3rver's own record of pending uploads (`<bucket>/._S3rver_uploads/<uploadId>/`), so an
 * upload that is aborted is really gone from the server and a listing shows what the server holds.
 */
export async function startS3Server(buckets: string[]): Promise<S3TestServer> {
  const unpatchDes = patchSingleDes();
  const dir = await mkdtemp(join(tmpdir(), 'layertap-s3rver-'));
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = ACCESS_KEY;
  process.env.AWS_SECRET_ACCESS_KEY = ACCESS_KEY;
  const uploadsDir = (bucket: string) => join(dir, bucket, '._S3rver_uploads');
  const listPending = async (bucket: string, prefix = ''): Promise<Array<PendingUpload & { initiated: Date }>> => {
    let ids: string[];
    try {
      ids = await readdir(uploadsDir(bucket));
    } catch {
      return [];
    }
    const out: Array<PendingUpload & { initiated: Date }> = [];
    for (const uploadId of ids) {
      const key = await readFile(join(uploadsDir(bucket), uploadId, 'key'), 'utf8').catch(() => null);
      if (key === null || !key.startsWith(prefix)) continue;
      out.push({ key, uploadId, initiated: (await stat(join(uploadsDir(bucket), uploadId))).birthtime });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  };
  const multipartHandlers = async (ctx: KoaContext, next: () => Promise<void>) => {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    const bucket = m?.[1];
    if (bucket && ctx.method === 'GET' && !m?.[2] && 'uploads' in ctx.query) {
      const uploads = await listPending(bucket, ctx.query.prefix ?? '');
      ctx.body = {
        ListMultipartUploadsResult: {
          Bucket: bucket,
          KeyMarker: '',
          UploadIdMarker: '',
          MaxUploads: 1000,
          IsTruncated: false,
          ...(uploads.length
            ? { Upload: uploads.map((u) => ({ Key: u.key, UploadId: u.uploadId, Initiated: u.initiated.toISOString(), StorageClass: 'STANDARD' })) }
            : {}),
        },
      };
      return;
    }
    if (bucket && ctx.method === 'DELETE' && m?.[2] && ctx.query.uploadId) {
      const target = join(uploadsDir(bucket), ctx.query.uploadId.replace(/[^0-9a-f]/gi, ''));
      const exists = await stat(target).then(
        () => true,
        () => false,
      );
      if (!exists) {
        ctx.status = 404;
        ctx.body = { Error: { Code: 'NoSuchUpload', Message: 'The specified upload does not exist.' } };
        return;
      }
      await rm(target, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    await next();
  };
  /** s3rver over `dir` on `port` (0: a free one), with the multipart handlers */
  const serve = async (port: number): Promise<{ server: S3rverLike; port: number }> => {
    const server = new S3rver({
      port,
      address: '127.0.0.1',
      directory: dir,
      silent: true,
      configureBuckets: buckets.map((name) => ({ name })),
    });
    // before s3rver's router (the last middleware), after its logging and XML encoding
    server.middleware.splice(server.middleware.length - 1, 0, multipartHandlers);
    return { server, port: (await server.run()).port };
  };
  const first = await serve(0);
  let server = first.server;
  const port = first.port;
  let running = true;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: ACCESS_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    dir,
    client,
    pendingUploads: async (bucket) => (await listPending(bucket)).map(({ key, uploadId }) => ({ key, uploadId })),
    put: async (bucket, key, body) => {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength }));
    },
    get: async (bucket, key) => {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return res.Body ? res.Body.transformToByteArray() : new Uint8Array();
    },
    keys: async (bucket, prefix = '') => {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const res = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
        for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    down: async () => {
      if (!running) return;
      running = false;
      const closed = server.close();
      server.httpServer?.closeAllConnections();
      await closed;
    },
    up: async () => {
      if (running) return;
      ({ server } = await serve(port));
      running = true;
    },
    close: async () => {
      client.destroy();
      destroyS3Clients();
      clearS3Downloads();
      if (running) await server.close();
      await rm(dir, { recursive: true, force: true });
      restore('AWS_ACCESS_KEY_ID', saved.id);
      restore('AWS_SECRET_ACCESS_KEY', saved.secret);
      unpatchDes();
    },
  };
}

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 (Node 17+)
 * only has in its legacy provider, so every truncated V2 listing fails with a 500. Single DES
 * equals triple DES with the key used three times, which OpenSSL 3 still has: map one onto the
 * other while a test server runs, so pagination works as on a real store.
 */
function patchSingleDes(): () => void {
  const mod = crypto as unknown as Record<'createCipheriv' | 'createDecipheriv', (...args: unknown[]) => unknown>;
  const originals = { createCipheriv: mod.createCipheriv, createDecipheriv: mod.createDecipheriv };
  for (const name of ['createCipheriv', 'createDecipheriv'] as const) {
    const original = originals[name];
    mod[name] = (algorithm: unknown, key: unknown, iv: unknown, ...rest: unknown[]) =>
      algorithm === 'des' && Buffer.isBuffer(key) && key.length === 8
        ? original.call(crypto, 'des-ede3-cbc', Buffer.concat([key, key, key]), iv, ...rest)
        : original.call(crypto, algorithm, key, iv, ...rest);
  }
  return () => Object.assign(mod, originals);
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** A bucket name of its own for one test (3-63 lowercase characters). */
export function testBucket(tag = 'lt'): string {
  return `${tag}-${randomBytes(4).toString('hex')}`;
}
