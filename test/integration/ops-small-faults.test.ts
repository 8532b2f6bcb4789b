import { request } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { startDashboard, type Dashboard } from '../../src/ops/dashboard/index.js';
import { WorkerMetrics } from '../../src/ops/metrics.js';
import { runJob } from '../../src/queue/run.js';
import { writeNpy } from '../../src/sources/npy.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { freePort, ProcessSet, TestRedis } from './reliability-harness.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

/** One HTTP request to 127.0.0.1 with the Host and path given as they are (fetch would set Host and tidy the path). */
function send(port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 15_000): Promise<Reply> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: Date.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

describe('metrics: the Host a request names', () => {
  const { prefix, cleanup } = testPrefix();
  let metrics: WorkerMetrics;
  let port = 0;
  beforeAll(async () => {
    metrics = new WorkerMetrics({ settings: { redisUrl: REDIS_URL, prefix }, defaultMetrics: false });
    port = await metrics.listen(0, '127.0.0.1', { allowHosts: ['prometheus.internal'] });
  });
  afterAll(async () => {
    await metrics.close();
    await cleanup();
  });

  it('refuses a name it was not given (a DNS-rebinding page), answers loopback names, addresses and --metrics-allow-host names', async () => {
    const rebound = await send(port, '/metrics', { host: `evil.example:${port}` });
    expect([rebound.status, rebound.body]).toEqual([
      403,
      "layertap worker metrics: Host 'evil.example' is not allowed (add it with --metrics-allow-host evil.example)\n",
    ]);
    expect((await send(port, '/healthz', { host: 'evil.example' })).status).toBe(403);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, '[::1]', '10.1.2.3:9464', `prometheus.internal:${port}`]) {
      const r = await send(port, '/metrics', { host });
      expect([host, r.status]).toEqual([host, 200]);
      expect(r.body).toContain('layertap_worker_info');
    }
  });
});

describe('dashboard: ?token= stays on the site', () => {
  const { prefix, cleanup } = testPrefix();
  let dash: Dashboard;
  const token = 'a-token-of-twenty-chars';
  beforeAll(async () => {
    dash = await startDashboard({ settings: { redisUrl: REDIS_URL, prefix }, port: 0, token, refreshSeconds: 0 });
  });
  afterAll(async () => {
    await dash.close();
    await cleanup();
  });

  it('redirects a path that starts with // to this host, never to the host it names', async () => {
    for (const path of ['//evil.example/x', '///evil.example/x']) {
      const r = await send(dash.port, `${path}?token=${token}&a=1`, { host: `127.0.0.1:${dash.port}` });
      expect([path, r.status, r.headers.location]).toEqual([path, 303, '/evil.example/x?a=1']);
    }
    const plain = await send(dash.port, `/runs?token=${token}`, { host: `127.0.0.1:${dash.port}` });
    expect([plain.status, plain.headers.location]).toEqual([303, '/runs']);
  });
});

describe('dashboard with Redis gone', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let redis: TestRedis;
  let dash: Dashboard | null = null;
  const procs = new ProcessSet();
  beforeAll(async () => {
    tmp = await tempDir('layertap-dash-redis-');
    redis = await TestRedis.start(join(tmp.dir, 'redis'));
  });
  afterAll(async () => {
    await dash?.close();
    await procs.killAll();
    await redis.stop();
    await tmp.remove();
  });

  it('health check, runs page, runs API and Bull Board API say at once that Redis does not answer; all come back with it', async () => {
    dash = await startDashboard({ settings: { redisUrl: redis.url, prefix: 'lt-gone' }, port: 0, refreshSeconds: 0 });
    const host = { host: `127.0.0.1:${dash.port}` };
    expect((await send(dash.port, '/healthz', host)).body).toBe('ok\n');
    expect((await send(dash.port, '/api/runs', host)).status).toBe(200);
    await redis.kill9();
    const health = await send(dash.port, '/healthz', host);
    expect(health.status).toBe(503);
    expect(health.body).toMatch(
      new RegExp(`^layertap dashboard: Redis at ${redis.url} does not answer \\(connection (connecting|reconnecting|close|end)\\)\\n$`),
    );
    const page = await send(dash.port, '/runs', host);
    expect(page.status).toBe(503);
    expect(page.body).toContain(`Redis at ${redis.url} does not answer`);
    expect(page.body).toContain('shows them once Redis answers');
    const api = await send(dash.port, '/api/runs', host);
    expect(api.status).toBe(503);
    expect((JSON.parse(api.body) as { error: string }).error).toMatch(new RegExp(`^Redis at ${redis.url} does not answer`));
    const board = await send(dash.port, '/queues/api/queues', host);
    expect(board.status).toBe(503);
    expect(board.ms).toBeLessThan(5000);

    await redis.restart();
    const end = Date.now() + 15_000;
    let back = await send(dash.port, '/healthz', host);
    while (back.status !== 200 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      back = await send(dash.port, '/healthz', host);
    }
    expect(back.body).toBe('ok\n');
    expect((await send(dash.port, '/api/runs', host)).status).toBe(200);
    expect((await send(dash.port, '/queues/api/queues', host)).status).toBe(200);
  }, 60_000);

  it('layertap dashboard stops on SIGTERM while Redis is gone', async () => {
    await redis.restart();
    const port = await freePort();
    const p = procs.cli(['dashboard', '--port', String(port)], { REDIS_URL: redis.url, LAYERTAP_PREFIX: 'lt-gone', LAYERTAP_LOG_FORMAT: 'json' });
    await p.waitFor(/layertap dashboard: ready/, 20_000);
    await redis.kill9();
    // what a browser with Bull Board open does meanwhile: ask for the queues, and give up on a late answer
    for (const path of ['/queues/api/queues', '/runs']) await send(port, path, { host: `127.0.0.1:${port}` }, 3000).catch(() => undefined);
    const asked = Date.now();
    const exit = await p.stop('SIGTERM', 20_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - asked).toBeLessThan(10_000);
    expect(p.text()).toContain('layertap dashboard: SIGTERM: stopping');
  }, 60_000);
});

describe('enqueue with the store down', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('layertap-s3-down-');
    await writeNpy(join(tmp.dir, 'rows.npy'), new Float32Array(2 * 28 * 28), [2, 28, 28, 1]);
  });
  afterAll(async () => {
    await tmp.remove();
  });

  it('exits 1 (the work failed), not 2 (the job file is wrong), naming the field and the store', async () => {
    const port = await freePort();
    const job = {
      name: 'down',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_1.1' }],
      sink: { uri: 's3://bucket/out', endpoint: `http://127.0.0.1:${port}` },
    };
    const file = join(tmp.dir, 'job.json');
    await writeFile(file, JSON.stringify(job));
    const r = await runCli(['enqueue', file], { REDIS_URL: 'redis://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_MAX_ATTEMPTS: '1' });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`^layertap: sink\\.uri: cannot reach bucket 'bucket': HeadBucket failed at http://127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\)\\n$`),
    );
  }, 60_000);
});

describe('worker log of a shard carried over whole', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  beforeAll(async () => {
    tmp = await tempDir('layertap-carried-log-');
    const data = new Float32Array(6 * 28 * 28).map((_, i) => (i % 97) / 97);
    await writeNpy(join(tmp.dir, 'rows.npy'), data, [6, 28, 28, 1]);
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('says how many rows were carried over instead of an empty backend', async () => {
    const job = {
      name: 'carried',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_1.1' }],
      shardSize: 3,
      batchSize: 3,
      incremental: true,
      sink: { uri: join(tmp.dir, 'out') },
    };
    const shardLines = async () => {
      const lines: string[] = [];
      const s = await runJob(parseJob(job), { threads: 1, settings: { redisUrl: REDIS_URL, prefix }, log: (l) => lines.push(l) });
      expect(s.status).toBe('committed');
      return lines
        .filter((l) => / shard \d+: \d+ rows/.test(l))
        .map((l) => l.replace(/ \d+\.\d+ s /, ' T s ').replace(/\((tensorflow|wasm|cpu)\)$/, '(BACKEND)'));
    };
    const first = await shardLines();
    expect(first.map((l) => l.replace(/^.*shard/, 'shard')).sort()).toEqual([
      'shard 0: 3 rows, 0 errors, T s (BACKEND)',
      'shard 1: 3 rows, 0 errors, T s (BACKEND)',
    ]);
    const second = await shardLines();
    expect(second.map((l) => l.replace(/^.*shard/, 'shard')).sort()).toEqual([
      'shard 0: 3 rows, 0 errors, T s (3 carried over)',
      'shard 1: 3 rows, 0 errors, T s (3 carried over)',
    ]);
  }, 120_000);
});
