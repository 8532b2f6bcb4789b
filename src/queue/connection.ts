import type { RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';

/** Where layertap's queues live: a Redis URL and a key prefix shared by every process of a deployment. */
export interface QueueSettings {
  /** @defaultValue process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl: string;
  /** key prefix for every queue and record. @defaultValue process.env.LAYERTAP_PREFIX ?? 'layertap' */
  prefix: string;
  /**
   * use a Redis whose maxmemory-policy is not `noeviction` (it may delete queued jobs).
   * @defaultValue process.env.LAYERTAP_ALLOW_EVICTION === '1'
   */
  allowEviction?: boolean;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Settings from the environment, with the documented defaults. */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): QueueSettings {
  return {
    redisUrl: env.REDIS_URL && env.REDIS_URL.length > 0 ? env.REDIS_URL : DEFAULT_REDIS_URL,
    prefix: env.LAYERTAP_PREFIX && env.LAYERTAP_PREFIX.length > 0 ? env.LAYERTAP_PREFIX : 'layertap',
    allowEviction: env.LAYERTAP_ALLOW_EVICTION === '1',
  };
}

/** ioredis options for a redis:// or rediss:// URL (user, password, db and TLS included). */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`REDIS_URL is not a URL: '${redactUrl(url)}' (expected e.g. redis://127.0.0.1:6379)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`REDIS_URL must start with redis:// or rediss://, got '${u.protocol}//'`);
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`REDIS_URL database must be a number, got '${u.pathname.slice(1)}'`);
  const opts: RedisOptions = {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db,
    // BullMQ workers block on Redis; they must not give up on a command while Redis restarts
    maxRetriesPerRequest: null,
    // reconnect at least every 2 s (BullMQ's own default backs off to 20 s, which a Redis restart
    // would turn into 20 s of idle workers)
    retryStrategy: (times: number) => Math.min(250 * times, 2000),
  };
  if (u.username) opts.username = decodeURIComponent(u.username);
  if (u.password) opts.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') opts.tls = {};
  return opts;
}

/** The URL with any password masked, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return redactUnparsed(url);
  }
}

/**
 * A URL the parser refused may still carry a password, and where it ends is unknown: everything
 * before the last '@' is masked, and text without one is shown only when it looks like a plain
 * host[:port][/db].
 */
function redactUnparsed(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)?([\s\S]*)$/i.exec(url);
  const scheme = m?.[1] ?? '';
  const rest = m?.[2] ?? '';
  const at = rest.lastIndexOf('@');
  if (at >= 0) return `${scheme}***${rest.slice(at)}`;
  return /^[\w.[\]-]*(:\d*)?(\/\d*)?$/.test(rest) ? url : `${scheme}***`;
}

/** BullMQ connection options for a Redis URL. */
export function bullConnection(url: string): ConnectionOptions {
  // BullMQ declares its own structural RedisOptions; ioredis' options are what it passes on
  return redisOptions(url) as ConnectionOptions;
}
