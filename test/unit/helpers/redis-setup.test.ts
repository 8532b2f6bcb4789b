import { describe, expect, it } from 'vitest';
import { chooseTestRedis, type TestRedisProbe } from '../../helpers/redis-setup.js';

// The test run's Redis: REDIS_URL, else the default port if it answers, else a private one.
describe('the Redis of a test run', () => {
  const DEFAULT = 'redis://127.0.0.1:6379';
  const PRIVATE = 'redis://127.0.0.1:41234';

  /** A machine where `answering` URLs answer and redis-server can be started unless `startError`. */
  function machine(env: NodeJS.ProcessEnv, answering: string[], startError?: string) {
    const calls = { probed: [] as string[], started: 0, stopped: 0 };
    const probe: TestRedisProbe = {
      env,
      answers: async (url) => {
        calls.probed.push(url);
        return answering.includes(url);
      },
      start: async () => {
        if (startError) throw new Error(startError);
        calls.started++;
        return { url: PRIVATE, stop: async () => void calls.stopped++ };
      },
    };
    return { probe, calls };
  }

  it('uses REDIS_URL as given, without probing or starting anything', async () => {
    const { probe, calls } = machine({ REDIS_URL: 'redis://:pw@10.0.0.5:6380/2' }, []);
    const r = await chooseTestRedis(probe);
    expect(r).toMatchObject({ url: 'redis://:pw@10.0.0.5:6380/2', source: 'REDIS_URL', warning: '' });
    expect(calls).toEqual({ probed: [], started: 0, stopped: 0 });
  });

  it('uses 127.0.0.1:6379 when REDIS_URL is unset or empty and it answers', async () => {
    for (const env of [{}, { REDIS_URL: '' }]) {
      const { probe, calls } = machine(env, [DEFAULT]);
      expect(await chooseTestRedis(probe)).toMatchObject({ url: DEFAULT, source: 'default', warning: '' });
      expect(calls).toEqual({ probed: [DEFAULT], started: 0, stopped: 0 });
    }
  });

  it('starts a private redis-server when nothing answers, and stops it at teardown', async () => {
    const { probe, calls } = machine({}, []);
    const r = await chooseTestRedis(probe);
    expect(r).toMatchObject({ url: PRIVATE, source: 'embedded', warning: '' });
    expect(calls).toEqual({ probed: [DEFAULT], started: 1, stopped: 0 });
    await r.stop();
    expect(calls.stopped).toBe(1);
  });

  it('without any Redis, warns and lets the Redis tests fail; under CI, fails the run', async () => {
    const cause = "no Redis answers at REDIS_URL or 127.0.0.1:6379, and 'redis-server' could not be started (spawn redis-server ENOENT)";
    const local = await chooseTestRedis(machine({}, [], cause).probe);
    expect(local).toMatchObject({ url: DEFAULT, source: 'none', warning: `${cause}. The tests that need Redis will fail.` });
    await expect(chooseTestRedis(machine({ CI: 'true' }, [], cause).probe)).rejects.toThrow(`no Redis for the tests: ${cause}`);
  });
});
