// vitest globalSetup: one Redis for the whole test run, chosen the way `layertap run` chooses
// one, so `npm test` works on a machine where redis-server is installed but not running.
import type { TestProject } from 'vitest/node';
import { DEFAULT_REDIS_URL } from '../../src/queue/connection.js';
import { EmbeddedRedis, redisAnswers } from '../../src/queue/embedded-redis.js';
import { inCi } from './binaries.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** the Redis every test uses; read it with testRedisUrl() from test/helpers/index.ts */
    redisUrl: string;
  }
}

/** Where the tests' Redis came from. */
export type TestRedisSource = 'REDIS_URL' | 'default' | 'embedded' | 'none';

/** The Redis chosen for a test run. */
export interface TestRedis {
  url: string;
  source: TestRedisSource;
  /** why there is no Redis (source 'none'); '' otherwise */
  warning: string;
  /** stops the private redis-server, if one was started */
  stop: () => Promise<void>;
}

/** What {@link chooseTestRedis} asks of the machine. */
export interface TestRedisProbe {
  env: NodeJS.ProcessEnv;
  /** true when a Redis answers PING at `url` */
  answers: (url: string) => Promise<boolean>;
  /** start a private redis-server; rejects when there is none to start */
  start: () => Promise<{ url: string; stop: () => Promise<void> }>;
}

const machine: TestRedisProbe = {
  env: process.env,
  answers: (url) => redisAnswers(url, 1000),
  start: () => EmbeddedRedis.start(),
};

const nothingToStop = async (): Promise<void> => undefined;

/**
 * REDIS_URL when set (used as given, not probed: a Redis that is down then fails the tests that
 * need it); else 127.0.0.1:6379 when it answers; else a private redis-server on a free loopback
 * port. Without one, the tests that need Redis fail on the default URL, after a warning; under CI,
 * where .ci/run installs redis-server, the run fails at once instead.
 */
export async function chooseTestRedis(probe: TestRedisProbe = machine): Promise<TestRedis> {
  // an empty REDIS_URL counts as unset, as in settingsFromEnv()
  const explicit = probe.env.REDIS_URL;
  if (explicit) return { url: explicit, source: 'REDIS_URL', warning: '', stop: nothingToStop };
  if (await probe.answers(DEFAULT_REDIS_URL)) return { url: DEFAULT_REDIS_URL, source: 'default', warning: '', stop: nothingToStop };
  try {
    const embedded = await probe.start();
    return { url: embedded.url, source: 'embedded', warning: '', stop: () => embedded.stop() };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    if (inCi(probe.env)) throw new Error(`no Redis for the tests: ${why}`);
    return { url: DEFAULT_REDIS_URL, source: 'none', warning: `${why}. The tests that need Redis will fail.`, stop: nothingToStop };
  }
}

/** Choose the run's Redis, hand it to the test workers, and stop it after the run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await chooseTestRedis();
  if (redis.source === 'embedded') {
    console.log(`tests: no REDIS_URL and nothing answers on ${DEFAULT_REDIS_URL}; using a private redis-server at ${redis.url}`);
  }
  if (redis.warning) console.warn(`tests: ${redis.warning}`);
  project.provide('redisUrl', redis.url);
  // workers are forked after this and inherit it, and so do the CLI processes the tests spawn
  const before = process.env.REDIS_URL;
  process.env.REDIS_URL = redis.url;
  return async () => {
    if (before === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = before;
    await redis.stop();
  };
}
