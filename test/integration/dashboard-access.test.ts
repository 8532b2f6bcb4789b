import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard, type DashboardOptions } from '../../src/ops/dashboard/index.js';
import { REDIS_URL, testPrefix } from '../helpers/index.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with full control of Host, Origin and the rest (fetch does not allow setting Host). */
function send(address: string, port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function machineAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}

const ADD_BODY = JSON.stringify({ name: 'shard', data: { runId: 'x', job: {}, shard: { index: 0, start: 0, count: 1 } }, options: {} });
const ORIGIN_REFUSED = (origin: string) => `layertap dashboard: cross-origin request refused (Origin ${origin})\n`;
const READ_ONLY = 'layertap dashboard: read-only: queue actions are off (start it with --allow-actions)\n';
const TOKEN_REQUIRED = 'layertap dashboard: a token is required: open the URL with ?token= printed at start, or send Authorization: Bearer <token>\n';

// What the issue showed against a default dashboard: a cross-site "simple" POST that adds a job, and
// a foreign Host (DNS rebinding) that reads every API. Each test starts a dashboard on a free port
// against real Redis, under its own key prefix.
describe('layertap dashboard: who may read and act', () => {
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };
  let shards: Queue;
  let dash: Dashboard | null = null;

  async function start(opts: Partial<DashboardOptions> = {}): Promise<Dashboard> {
    dash = await startDashboard({ settings, port: 0, refreshSeconds: 0, ...opts });
    return dash;
  }
  const jobsInShards = async () => Object.values(await shards.getJobCounts()).reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    shards = new Queue('shards', { connection: { url: REDIS_URL }, prefix });
    await shards.waitUntilReady();
  });
  afterEach(async () => {
    await dash?.close();
    dash = null;
    await shards.obliterate({ force: true });
  });
  afterAll(async () => {
    await shards.close();
    await cleanup();
  });

  it('refuses a cross-site simple POST (text/plain, no preflight) with 403 and adds no job', async () => {
    const { port } = await start();
    const res = await send('127.0.0.1', port, '/queues/api/queues/shards/add', {
      method: 'POST',
      headers: { host: `127.0.0.1:${port}`, 'content-type': 'text/plain', origin: 'http://evil.example' },
      body: ADD_BODY,
    });
    expect(res.status).toBe(403);
    expect(res.body).toBe(ORIGIN_REFUSED('http://evil.example'));
    // the same from a page that sends only a Referer
    const viaReferer = await send('127.0.0.1', port, '/queues/api/queues/shards/add', {
      method: 'POST',
      headers: { host: `127.0.0.1:${port}`, 'content-type': 'text/plain', referer: 'http://evil.example/page.html' },
      body: ADD_BODY,
    });
    expect(viaReferer.status).toBe(403);
    expect(viaReferer.body).toBe('layertap dashboard: cross-origin request refused (Referer from http://evil.example)\n');
    expect(await jobsInShards()).toBe(0);
  });

  it('is read-only by default: same-origin actions are refused, pages and APIs are served', async () => {
    const { port } = await start();
    const host = `127.0.0.1:${port}`;
    const add = await send('127.0.0.1', port, '/queues/api/queues/shards/add', {
      method: 'POST',
      headers: { host, 'content-type': 'application/json', origin: `http://${host}` },
      body: ADD_BODY,
    });
    expect(add.status).toBe(403);
    expect(add.body).toBe(READ_ONLY);
    const pause = await send('127.0.0.1', port, '/queues/api/queues/shards/pause', { method: 'PUT', headers: { host, origin: `http://${host}` } });
    expect(pause.status).toBe(403);
    expect(await jobsInShards()).toBe(0);
    expect(await shards.isPaused()).toBe(false);

    for (const path of ['/runs', '/api/runs', '/queues', '/queues/api/queues', '/healthz']) {
      const res = await send('127.0.0.1', port, path, { headers: { host } });
      expect(res.status, path).toBe(200);
      // no page of it may be framed by another site (clickjacking of the buttons)
      expect(res.headers['x-frame-options'], path).toBe('DENY');
    }
    const queues = JSON.parse((await send('127.0.0.1', port, '/queues/api/queues', { headers: { host } })).body) as {
      queues: Array<{ name: string; readOnlyMode: boolean }>;
    };
    expect(queues.queues.map((q) => [q.name, q.readOnlyMode])).toEqual([
      ['runs', true],
      ['shards', true],
      ['schedules', true],
    ]);
  });

  it('refuses a Host that is not allowed (DNS rebinding) on every page and API', async () => {
    const { port } = await start();
    for (const path of ['/', '/runs', '/api/runs', '/queues', '/queues/api/queues', '/queues/api/redis/stats', '/healthz']) {
      const res = await send('127.0.0.1', port, path, { headers: { host: `evil.example:${port}` } });
      expect(res.status, path).toBe(403);
      expect(res.body, path).toBe("layertap dashboard: Host 'evil.example' is not allowed (add it with --allow-host evil.example)\n");
    }
    for (const name of ['localhost', '127.0.0.1', '[::1]', 'LocalHost']) {
      expect((await send('127.0.0.1', port, '/api/runs', { headers: { host: `${name}:${port}` } })).status, name).toBe(200);
    }
    await dash!.close();

    // --allow-host adds names (a port given with it is ignored)
    const again = await start({ allowHosts: ['dash.internal', 'Board.Example:8443'] });
    for (const name of ['dash.internal', 'board.example', 'localhost']) {
      expect((await send('127.0.0.1', again.port, '/api/runs', { headers: { host: `${name}:${again.port}` } })).status, name).toBe(200);
    }
    expect((await send('127.0.0.1', again.port, '/api/runs', { headers: { host: `evil.example:${again.port}` } })).status).toBe(403);
  });

  it('asks for a token on every page and API when bound beyond loopback; ?token= sets an HttpOnly SameSite=Strict cookie', async () => {
    const d = await start({ host: '0.0.0.0' });
    const { port } = d;
    expect(d.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(d.tokenGenerated).toBe(true);
    const host = `127.0.0.1:${port}`;
    for (const path of ['/', '/runs', '/api/runs', '/queues', '/queues/api/queues']) {
      const res = await send('127.0.0.1', port, path, { headers: { host } });
      expect(res.status, path).toBe(401);
      expect(res.body, path).toBe(TOKEN_REQUIRED);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="layertap dashboard"');
    }
    const wrong = await send('127.0.0.1', port, '/api/runs', { headers: { host, authorization: 'Bearer not-the-token-at-all' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toBe('layertap dashboard: wrong token\n');
    expect((await send('127.0.0.1', port, '/api/runs', { headers: { host, authorization: `Bearer ${d.token}` } })).status).toBe(200);
    // the health check has nothing to give away and must work for container health checks
    const health = await send('127.0.0.1', port, '/healthz', { headers: { host } });
    expect([health.status, health.body]).toEqual([200, 'ok\n']);

    const login = await send('127.0.0.1', port, `/runs?name=demo&token=${d.token}`, { headers: { host } });
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/runs?name=demo');
    expect(login.headers['set-cookie']).toEqual([`layertap_dashboard_${port}=${d.token}; Path=/; HttpOnly; SameSite=Strict`]);
    const badLogin = await send('127.0.0.1', port, '/runs?token=nope-nope-nope-nope', { headers: { host } });
    expect(badLogin.status).toBe(401);
    expect(badLogin.headers['set-cookie']).toBeUndefined();
    const withCookie = await send('127.0.0.1', port, '/runs', { headers: { host, cookie: `layertap_dashboard_${port}=${d.token}` } });
    expect(withCookie.status).toBe(200);
    expect(withCookie.body).toContain('<title>layertap runs</title>');
    // a token is no way around read-only
    const add = await send('127.0.0.1', port, '/queues/api/queues/shards/add', {
      method: 'POST',
      headers: { host, 'content-type': 'application/json', origin: `http://${host}`, authorization: `Bearer ${d.token}` },
      body: ADD_BODY,
    });
    expect([add.status, add.body]).toEqual([403, READ_ONLY]);
    expect(await jobsInShards()).toBe(0);
  });

  it.skipIf(machineAddress() === null)('bound to an address of the machine: that address is an allowed Host, and the token is required', async () => {
    const address = machineAddress()!;
    const { port, token } = await start({ host: address, token: 'a-token-given-by-the-operator' });
    expect(token).toBe('a-token-given-by-the-operator');
    const host = `${address}:${port}`;
    expect((await send(address, port, '/api/runs', { headers: { host } })).status).toBe(401);
    expect((await send(address, port, '/api/runs', { headers: { host, authorization: 'Bearer a-token-given-by-the-operator' } })).status).toBe(200);
    expect(
      (await send(address, port, '/api/runs', { headers: { host: `evil.example:${port}`, authorization: 'Bearer a-token-given-by-the-operator' } })).status,
    ).toBe(403);
  });

  it('with allowActions: actions need the token and the dashboard origin; then they work', async () => {
    const d = await start({ allowActions: true });
    const { port } = d;
    expect(d.tokenGenerated).toBe(true);
    const host = `127.0.0.1:${port}`;
    const own = `http://${host}`;
    // on loopback, looking needs no token
    expect((await send('127.0.0.1', port, '/api/runs', { headers: { host } })).status).toBe(200);

    const add = (headers: Record<string, string>) =>
      send('127.0.0.1', port, '/queues/api/queues/shards/add', {
        method: 'POST',
        headers: { host, 'content-type': 'application/json', ...headers },
        body: ADD_BODY,
      });
    const noToken = await add({ origin: own });
    expect([noToken.status, noToken.body]).toEqual([401, TOKEN_REQUIRED]);
    const crossSite = await add({ origin: 'http://evil.example', authorization: `Bearer ${d.token}` });
    expect([crossSite.status, crossSite.body]).toEqual([403, ORIGIN_REFUSED('http://evil.example')]);
    const nullOrigin = await add({ origin: 'null', authorization: `Bearer ${d.token}` });
    expect([nullOrigin.status, nullOrigin.body]).toEqual([403, ORIGIN_REFUSED('null')]);
    const otherPort = await add({ origin: `http://127.0.0.1:${port + 1}`, authorization: `Bearer ${d.token}` });
    expect(otherPort.status).toBe(403);
    expect(await jobsInShards()).toBe(0);

    const ok = await add({ origin: own, cookie: `layertap_dashboard_${port}=${d.token}` });
    expect(ok.status, ok.body).toBe(200);
    expect(await jobsInShards()).toBe(1);
    // a script with the token and no browser headers at all
    const scripted = await add({ authorization: `Bearer ${d.token}` });
    expect(scripted.status).toBe(200);
    expect(await jobsInShards()).toBe(2);
    // Referer instead of Origin
    const pause = await send('127.0.0.1', port, '/queues/api/queues/shards/pause', {
      method: 'PUT',
      headers: { host, referer: `${own}/queues/queue/shards`, authorization: `Bearer ${d.token}` },
    });
    expect(pause.status).toBe(200);
    expect(await shards.isPaused()).toBe(true);
    await shards.resume();
  });

  it('a token given on loopback guards every page; option errors name the option', async () => {
    const { port } = await start({ token: 'correct-horse-battery-staple' });
    const host = `localhost:${port}`;
    expect((await send('127.0.0.1', port, '/runs', { headers: { host } })).status).toBe(401);
    expect((await send('127.0.0.1', port, '/runs', { headers: { host, authorization: 'Bearer correct-horse-battery-staple' } })).status).toBe(200);
    await dash!.close();
    dash = null;
    await expect(startDashboard({ settings, port: 0, token: 'short' })).rejects.toThrow('options.token must be at least 16 characters');
    await expect(startDashboard({ settings, port: 0, allowHosts: ['bad host/name'] })).rejects.toThrow(
      "options.allowHosts: 'bad host/name' is not a host name",
    );
    await expect(startDashboard({ settings, port: 0, host: 'bad host' })).rejects.toThrow("options.host: 'bad host' is not a host name");
    await expect(startDashboard({ settings, port: 0, readOnly: true, allowActions: true })).rejects.toThrow(
      'options.readOnly and options.allowActions contradict each other',
    );
  });
});
