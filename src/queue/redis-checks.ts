import { isIP } from 'node:net';
import { Redis } from 'ioredis';
import { redactUrl, redisOptions } from './connection.js';

/** Redis cannot be used as layertap's queue store: unreachable, refused us, or set up to lose jobs. */
export class RedisSetupError extends Error {
  override readonly name = 'RedisSetupError';
}

/** Options for {@link checkRedis}. */
export interface RedisCheckOptions {
  /**
   * accept a `maxmemory-policy` other than `noeviction` (BullMQ loses jobs when Redis evicts keys).
   * @defaultValue process.env.LAYERTAP_ALLOW_EVICTION === '1'
   */
  allowEviction?: boolean;
  /** how long to wait for the connection and each check. @defaultValue 3000 */
  timeoutMs?: number;
}

/** What {@link checkRedis} learned: the server's version and policy, and warnings worth logging. */
export interface RedisCheckResult {
  version: string;
  maxmemoryPolicy: string;
  warnings: string[];
}

/** True for 127.0.0.0/8, ::1, localhost and Unix-ish loopback names: traffic that never leaves the host. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/**
 * Warnings for a Redis URL that crosses the network unprotected: job data (paths, model URIs)
 * and results travel in clear text, and anyone who can reach the port can read or delete jobs.
 */
export function securityWarnings(url: string): string[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [];
  }
  if (isLoopbackHost(u.hostname)) return [];
  const missing: string[] = [];
  if (!u.password) missing.push('no password (anyone who reaches the port can read, change or delete jobs)');
  if (u.protocol !== 'rediss:') missing.push('no TLS (jobs and results cross the network in clear text; use rediss://)');
  if (missing.length === 0) return [];
  return [`Redis at ${redactUrl(url)} is not on this host and has ${missing.join(' and ')}`];
}

/** The value of `field` in an INFO reply, or null. */
function infoField(info: string, field: string): string | null {
  const m = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return m ? (m[1] ?? '').trim() : null;
}

/**
 * Connect once to check that Redis answers, accepts our credentials, and will not evict queue
 * keys. Throws a {@link RedisSetupError} that says what to do; returns warnings to log.
 */
export async function checkRedis(url: string, opts: RedisCheckOptions = {}): Promise<RedisCheckResult> {
  const allowEviction = opts.allowEviction ?? process.env.LAYERTAP_ALLOW_EVICTION === '1';
  const timeoutMs = opts.timeoutMs ?? 3000;
  const shown = redactUrl(url);
  let base;
  try {
    base = redisOptions(url);
  } catch (err) {
    throw new RedisSetupError((err as Error).message);
  }
  const redis = new Redis({
    ...base,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    // one attempt: a check that retries forever is not a check
    retryStrategy: () => null,
  });
  // connect() only says "Connection is closed"; the 'error' event has the cause (ECONNREFUSED, NOAUTH, ...)
  let cause: Error | null = null;
  redis.on('error', (err: Error) => (cause ??= err));
  try {
    try {
      await redis.connect();
      await redis.ping();
    } catch (err) {
      const msg = (cause ?? (err as Error)).message;
      if (/WRONGPASS|NOAUTH|NOPERM|invalid password|invalid username/i.test(msg)) {
        throw new RedisSetupError(`Redis at ${shown} refused the credentials (${msg}); fix the user/password in REDIS_URL`);
      }
      throw new RedisSetupError(`Redis at ${shown} does not answer (${msg}); start it or set REDIS_URL`);
    }
    let info = '';
    try {
      info = String(await redis.info());
    } catch (err) {
      // managed services may forbid INFO; say so rather than refuse a Redis that may be fine
      return {
        version: 'unknown',
        maxmemoryPolicy: 'unknown',
        warnings: [
          `could not read INFO from Redis at ${shown} (${(err as Error).message}); make sure its maxmemory-policy is noeviction`,
          ...securityWarnings(url),
        ],
      };
    }
    const version = infoField(info, 'redis_version') ?? 'unknown';
    const policy = infoField(info, 'maxmemory_policy') ?? 'unknown';
    const warnings: string[] = [];
    if (policy !== 'noeviction' && policy !== 'unknown') {
      const why = `Redis at ${shown} has maxmemory-policy '${policy}': when memory fills up it deletes keys, and queued shards or run state are lost`;
      if (!allowEviction) {
        throw new RedisSetupError(
          `${why}. Set 'maxmemory-policy noeviction' (redis-cli CONFIG SET maxmemory-policy noeviction, or in redis.conf), ` +
            'or accept the risk with LAYERTAP_ALLOW_EVICTION=1 (or --allow-eviction)',
        );
      }
      warnings.push(`${why} (allowed by LAYERTAP_ALLOW_EVICTION / --allow-eviction)`);
    }
    warnings.push(...securityWarnings(url));
    return { version, maxmemoryPolicy: policy, warnings };
  } finally {
    redis.disconnect();
  }
}
