import type { S3Client } from '@aws-sdk/client-s3';
import { FieldError } from '../types/errors.js';
import { StorageError } from '../types/errors.js';

/** The AWS SDK's S3 module. */
export type S3Sdk = typeof import('@aws-sdk/client-s3');
// a memoized import: it holds the module and nothing else
let sdk: Promise<S3Sdk> | null = null;

/** Loads the AWS SDK on first use (a few hundred ms): jobs without s3:// never pay for it. */
export function loadS3Sdk(): Promise<S3Sdk> {
  sdk ??= import('@aws-sdk/client-s3');
  return sdk;
}

/** How to reach an S3-compatible store; every field falls back to the standard AWS environment. */
export interface S3ConnectionOptions {
  /** e.g. http://127.0.0.1:9000 for MinIO. @defaultValue AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS itself */
  endpoint?: string;
  /** @defaultValue AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1 */
  region?: string;
  /** bucket in the path (http://host/bucket/key) instead of the host name. @defaultValue true when an endpoint is set */
  forcePathStyle?: boolean;
}

/** The job fields that say how to reach an S3-compatible store (`sink:` and `source:` sections). */
export const S3_CONNECTION_FIELDS = ['endpoint', 'region', 'forcePathStyle'] as const satisfies ReadonlyArray<keyof S3ConnectionOptions>;

/**
 * The connection settings a job section sets, without its other fields (`format`, `type`, ...)
 * and without unset ones, so that what travels in a job and keys a client is only what was given.
 */
export function s3Connection(section: S3ConnectionOptions): S3ConnectionOptions {
  return {
    ...(section.endpoint !== undefined ? { endpoint: section.endpoint } : {}),
    ...(section.region !== undefined ? { region: section.region } : {}),
    ...(section.forcePathStyle !== undefined ? { forcePathStyle: section.forcePathStyle } : {}),
  };
}

/** A bucket and a key (or key prefix, possibly empty) parsed from an s3:// URI. */
export interface S3Location {
  bucket: string;
  key: string;
}

const S3_URI = /^s3:\/\//i;

/** Whether `uri` names an object or prefix in S3 (`s3://bucket/...`). */
export function isS3Uri(uri: string): boolean {
  return S3_URI.test(uri);
}

/**
 * Splits `s3://bucket/some/key` into bucket and key. The key is taken literally (not URL-decoded),
 * so keys with spaces, '+' or '#' are written as they are. `field` names the job field in errors.
 */
export function parseS3Uri(uri: string, field: string): S3Location {
  if (!isS3Uri(uri)) throw new FieldError(field, `'${uri}' is not an s3:// URI`);
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  // bucket naming rules (3-63 chars, lowercase, digits, dots, hyphens); a stricter check is the store's job
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new FieldError(field, `'${bucket}' in ${uri} is not a valid bucket name (3-63 characters: lowercase letters, digits, '.' and '-')`);
  }
  return { bucket, key };
}

/** `s3://bucket/key`. */
export function formatS3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

interface ResolvedConnection {
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
}

/** Fills the options from the environment, as the SDK would, so the effective settings are known (and shown in errors). */
export function resolveConnection(opts: S3ConnectionOptions = {}): ResolvedConnection {
  const env = process.env;
  const endpoint = opts.endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  const region = opts.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1');
  const envPathStyle = env.AWS_S3_FORCE_PATH_STYLE?.toLowerCase();
  const forcePathStyle = opts.forcePathStyle ?? (envPathStyle === 'true' ? true : envPathStyle === 'false' ? false : endpoint !== undefined);
  return { endpoint, region, forcePathStyle };
}

/**
 * One client per connection setting, owned by the process: clients pool their sockets, so
 * sharing them is cheaper than making one per shard. The sinks and sources of every run and
 * every worker in the process use them, so none of those may end them; they live until the
 * process exits, or until {@link destroyS3Clients}.
 */
const clients = new Map<string, S3Client>();

/** The shared S3 client for these options; credentials come from the SDK's default chain (env, profile, SSO, instance role). */
export async function s3Client(opts: S3ConnectionOptions = {}): Promise<S3Client> {
  const { S3Client } = await loadS3Sdk();
  const conn = resolveConnection(opts);
  const id = JSON.stringify(conn);
  let client = clients.get(id);
  if (!client) {
    client = new S3Client({
      region: conn.region,
      forcePathStyle: conn.forcePathStyle,
      ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
      // Many S3-compatible stores reject the newer default checksum headers and trailers; send
      // them only where an operation requires them unless the environment asks for more.
      ...(conn.endpoint && !process.env.AWS_REQUEST_CHECKSUM_CALCULATION
        ? { requestChecksumCalculation: 'WHEN_REQUIRED' as const, responseChecksumValidation: 'WHEN_REQUIRED' as const }
        : {}),
    });
    clients.set(id, client);
  }
  return client;
}

/** Releases every shared client's sockets, for a process done with S3 (tests, programs that embed layertap); a later s3Client() makes new ones. */
export function destroyS3Clients(): void {
  for (const c of clients.values()) c.destroy();
  clients.clear();
}

/** HTTP status of an SDK error, if any. */
export function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** The S3 error code (NoSuchKey, AccessDenied, ...) or the SDK's error name. */
export function errorCode(err: unknown): string {
  const e = err as { Code?: string; name?: string } | null;
  return e?.Code ?? e?.name ?? 'Error';
}

/** A one-line description of an SDK error that says what was asked of which store. */
export function describeS3Error(err: unknown, what: string, opts: S3ConnectionOptions = {}): string {
  const status = httpStatus(err);
  const code = errorCode(err);
  const raw = err instanceof Error ? err.message : String(err);
  // the SDK says 'UnknownError' for bodiless answers (HEAD): the status and code say more
  const message = raw && raw !== 'UnknownError' && raw !== code ? `: ${raw}` : '';
  const endpoint = resolveConnection(opts).endpoint ?? 'AWS S3';
  return `${what} failed at ${endpoint} (${status ? `HTTP ${status} ` : ''}${code}${message})`;
}

/** HTTP statuses whose request will fail the same way when repeated (bad request, denied, missing, conflicting). */
const PERMANENT_STATUSES = new Set([400, 401, 403, 404, 405, 409, 411, 412, 413, 416, 501]);

/**
 * An S3 request that failed, as a StorageError saying `what` failed where, and whether another
 * attempt may succeed: network faults, throttling and server errors may pass, a denied or
 * missing bucket or key will not.
 */
export function s3Error(err: unknown, what: string, opts: S3ConnectionOptions = {}, prefix = ''): StorageError {
  const status = httpStatus(err);
  return new StorageError(`${prefix}${describeS3Error(err, what, opts)}`, status === undefined || !PERMANENT_STATUSES.has(status), { cause: err });
}

/**
 * Checks that `bucket` exists and can be reached with the current credentials (HeadBucket), so a
 * bad job fails before any work. Throws an Error starting with `field` and naming the bucket: a
 * FieldError when the job is wrong (no such bucket, access denied), a retryable StorageError when
 * the store does not answer.
 */
export async function checkBucket(bucket: string, opts: S3ConnectionOptions, field: string): Promise<void> {
  const conn = resolveConnection(opts);
  const where = conn.endpoint ?? `AWS S3 (${conn.region})`;
  try {
    const { HeadBucketCommand } = await loadS3Sdk();
    await (await s3Client(opts)).send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const status = httpStatus(err);
    const code = errorCode(err);
    if (status === 404 || code === 'NotFound' || code === 'NoSuchBucket') {
      throw new FieldError(field, `bucket '${bucket}' does not exist at ${where}; create it first or fix the uri`, { cause: err });
    }
    if (status === 403 || code === 'AccessDenied' || code === 'Forbidden') {
      throw new FieldError(
        field,
        `access to bucket '${bucket}' at ${where} is denied (HTTP 403); check the credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) and the bucket policy`,
        { cause: err },
      );
    }
    const failed = s3Error(err, 'HeadBucket', opts, `${field}: cannot reach bucket '${bucket}': `);
    // a store that does not answer (network, throttling, server errors) is an outage, not a wrong job
    if (failed.retryable) throw failed;
    throw new FieldError(field, `cannot reach bucket '${bucket}': ${describeS3Error(err, 'HeadBucket', opts)}`, { cause: err });
  }
}
