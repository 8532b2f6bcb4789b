import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost, securityWarnings } from '../../src/queue/redis-checks.js';
import { runCli } from '../helpers/cli.js';
import { SEED_MODEL, tempDir } from '../helpers/index.js';
import { freePort, ProcessSet, TestRedis, writeRows } from '../integration/reliability-harness.js';

// Before any work, `worker`, `enqueue`, `status` and `run` check the Redis they are pointed
// at: it must answer, accept the credentials and not evict keys (unless overridden); one
// reached over the network without a password or TLS gets a warning.
describe('Redis checks at start', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const servers: TestRedis[] = [];
  const procs = new ProcessSet();
  let jobFile = '';

  beforeAll(async () => {
    tmp = await tempDir('layertap-startup-');
    await writeRows(join(tmp.dir, 'rows.npy'), 8);
    jobFile = join(tmp.dir, 'job.json');
    await writeFile(
      jobFile,
      JSON.stringify({
        name: 'startup',
        source: { uri: join(tmp.dir, 'rows.npy') },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_class.0', at: 'input' }],
        sink: { uri: join(tmp.dir, 'out') },
      }),
    );
  });
  afterAll(async () => {
    await procs.killAll();
    for (const s of servers) await s.stop();
    await tmp.remove();
  });

  async function server(name: string, extra: string[], host?: string): Promise<TestRedis> {
    const s = await TestRedis.start(join(tmp.dir, name), extra, host);
    servers.push(s);
    return s;
  }

  it('exits 1 with a clear message when Redis does not answer (worker, enqueue, status, run)', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const env = { REDIS_URL: url, LAYERTAP_PREFIX: 'lt-nothing-there' };
    const t0 = Date.now();
    const [worker, enqueue, status, run] = await Promise.all([
      runCli(['worker', '--threads', '1'], env, 20_000),
      runCli(['enqueue', jobFile], env, 20_000),
      runCli(['status', 'some-run'], env, 20_000),
      runCli(['run', jobFile], env, 20_000),
    ]);
    const seconds = (Date.now() - t0) / 1000;
    for (const r of [worker, enqueue, status]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`layertap: Redis at ${url} does not answer (connect ECONNREFUSED 127.0.0.1:${url.split(':')[2]}); start it or set REDIS_URL`);
    }
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain(`layertap: Redis at ${url} does not answer; start it or fix REDIS_URL`);
    expect(seconds).toBeLessThan(20);
  }, 30_000);

  it('refuses a Redis whose maxmemory-policy evicts keys, unless LAYERTAP_ALLOW_EVICTION=1 or --allow-eviction', async () => {
    const lru = await server('lru', ['--maxmemory-policy', 'allkeys-lru']);
    const env = { REDIS_URL: lru.url, LAYERTAP_PREFIX: 'lt-eviction' };
    const [worker, enqueue, run] = await Promise.all([
      runCli(['worker', '--threads', '1'], env, 20_000),
      runCli(['enqueue', jobFile], env, 20_000),
      runCli(['run', jobFile, '--threads', '1'], env, 20_000),
    ]);
    for (const r of [worker, enqueue, run]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(
        /Redis at redis:\/\/127\.0\.0\.1:\d+ has maxmemory-policy 'allkeys-lru': when memory fills up it deletes keys, and queued shards or run state are lost\. Set 'maxmemory-policy noeviction'.*or accept the risk with LAYERTAP_ALLOW_EVICTION=1 \(or --allow-eviction\)/,
      );
    }

    const allowed = procs.cli(['worker', '--threads', '1'], { ...env, LAYERTAP_ALLOW_EVICTION: '1' }, 'worker-allowed');
    await allowed.waitFor(/layertap worker: ready/);
    expect(allowed.text()).toMatch(
      /layertap worker: warning: Redis at .* has maxmemory-policy 'allkeys-lru'.*\(allowed by LAYERTAP_ALLOW_EVICTION \/ --allow-eviction\)/,
    );
    expect((await allowed.stop('SIGTERM')).code).toBe(0);

    const flagged = await runCli(['enqueue', jobFile, '--allow-eviction', '--json'], env, 20_000);
    expect(flagged.code, flagged.stderr).toBe(0);
    expect(flagged.stderr).toMatch(/layertap: warning: Redis at .* has maxmemory-policy 'allkeys-lru'/);
    expect(JSON.parse(flagged.stdout)).toMatchObject({ status: 'queued', shards: 1, rows: 8 });
  }, 40_000);

  it('runs against an evicting Redis when told to, by flag or by environment', async () => {
    const lru = await server('lru-run', ['--maxmemory-policy', 'allkeys-lru']);
    const env = { REDIS_URL: lru.url, LAYERTAP_PREFIX: 'lt-eviction-run' };
    const [flagged, fromEnv] = await Promise.all([
      runCli(['run', jobFile, '--threads', '1', '--allow-eviction', '--json'], env, 60_000),
      runCli(['run', jobFile, '--threads', '1', '--json'], { ...env, LAYERTAP_ALLOW_EVICTION: '1' }, 60_000),
    ]);
    for (const r of [flagged, fromEnv]) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        /warning: Redis at redis:\/\/127\.0\.0\.1:\d+ has maxmemory-policy 'allkeys-lru'.*\(allowed by LAYERTAP_ALLOW_EVICTION \/ --allow-eviction\)/,
      );
      expect(JSON.parse(r.stdout)).toMatchObject({ status: 'committed', rows: 8, errorRows: 0 });
    }
  }, 70_000);

  it('says when Redis refuses the credentials, without printing the password', async () => {
    const locked = await server('auth', ['--requirepass', 's3cret-pw']);
    const noPass = await runCli(['worker'], { REDIS_URL: locked.url, LAYERTAP_PREFIX: 'lt-auth' }, 20_000);
    expect(noPass.code).toBe(1);
    expect(noPass.stderr).toMatch(
      /Redis at redis:\/\/127\.0\.0\.1:\d+ refused the credentials \(NOAUTH Authentication required\.\); fix the user\/password in REDIS_URL/,
    );
    const wrong = await runCli(['status', 'x'], { REDIS_URL: `redis://:wrong-pw@127.0.0.1:${locked.port}`, LAYERTAP_PREFIX: 'lt-auth' }, 20_000);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ refused the credentials \(WRONGPASS/);
    expect(wrong.stderr).not.toContain('wrong-pw');
    const right = await runCli(['status', 'no-such-run'], { REDIS_URL: `redis://:s3cret-pw@127.0.0.1:${locked.port}`, LAYERTAP_PREFIX: 'lt-auth' }, 20_000);
    expect(right.code).toBe(1);
    expect(right.stderr).toContain("layertap: no run with id 'no-such-run' (prefix lt-auth)");
  }, 40_000);

  it('knows loopback hosts and what an unprotected network Redis lacks', () => {
    for (const h of ['127.0.0.1', '127.3.2.1', 'localhost', '::1', '[::1]', 'db.localhost']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['10.0.0.5', '192.0.2.2', 'redis.internal', '::ffff:10.0.0.1', 'fd00::2']) expect(isLoopbackHost(h), h).toBe(false);
    expect(securityWarnings('redis://127.0.0.1:6379')).toEqual([]);
    expect(securityWarnings('redis://10.0.0.5:6379')).toEqual([
      'Redis at redis://10.0.0.5:6379 is not on this host and has no password (anyone who reaches the port can read, change or delete jobs) and no TLS (jobs and results cross the network in clear text; use rediss://)',
    ]);
    expect(securityWarnings('redis://:pw@10.0.0.5:6379')).toEqual([
      'Redis at redis://:***@10.0.0.5:6379 is not on this host and has no TLS (jobs and results cross the network in clear text; use rediss://)',
    ]);
    expect(securityWarnings('rediss://user:pw@redis.example.com:6380')).toEqual([]);
  });

  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

  it.skipIf(!external)(
    'warns, and still starts, when the worker reaches Redis over the network without a password or TLS',
    async () => {
      const open = await server('open', ['--protected-mode', 'no'], external!);
      const w = procs.cli(['worker', '--threads', '1'], { REDIS_URL: open.url, LAYERTAP_PREFIX: 'lt-open' }, 'worker-open');
      await w.waitFor(/layertap worker: ready/);
      expect(w.text()).toContain(
        `layertap worker: warning: Redis at ${open.url} is not on this host and has no password (anyone who reaches the port can read, change or delete jobs) and no TLS`,
      );
      expect((await w.stop('SIGTERM')).code).toBe(0);
    },
    30_000,
  );
});
