import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EmbeddedRedis, redisAnswers } from '../../src/queue/embedded-redis.js';

// The embedded default: a private redis-server from PATH on a free loopback port, gone after stop().
describe('embedded redis-server', () => {
  it('starts on a free loopback port, answers, and stops without leftovers', async () => {
    const r = await EmbeddedRedis.start();
    expect(r.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(await redisAnswers(r.url)).toBe(true);
    const dir = (r as unknown as { dir: string }).dir;
    expect(existsSync(dir)).toBe(true);
    await r.stop();
    expect(await redisAnswers(r.url, 300)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it('says how to get Redis when redis-server is missing', async () => {
    await expect(EmbeddedRedis.start('/nonexistent/redis-server')).rejects.toThrow(/could not be started.*Install Redis.*REDIS_URL/);
  });

  it('does not mistake a closed port for Redis', async () => {
    expect(await redisAnswers('redis://127.0.0.1:1', 300)).toBe(false);
  });
});
