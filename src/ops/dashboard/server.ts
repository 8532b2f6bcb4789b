import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serve } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { Queue } from 'bullmq';
import { Hono, type MiddlewareHandler } from 'hono';
import { LayertapClient } from '../../queue/client.js';
import { bullConnection, redactUrl, type QueueSettings } from '../../queue/connection.js';
import { checkRedis, isLoopbackHost } from '../../queue/redis-checks.js';
import { SCHEDULES_QUEUE } from '../../queue/schedules.js';
import { RUNS_QUEUE, SHARDS_QUEUE } from '../../queue/types.js';
import { accessGuard, allowedHostName, type AccessPolicy, generateToken, LOOPBACK_NAMES, MIN_TOKEN_LENGTH, securityHeaders } from './access.js';
import { DEFAULTS } from '../../config/defaults.js';
import { escapeHtml, renderRunsPage, renderUnavailablePage } from './runs-page.js';
import { connectedWorkers, listRuns, type RunView } from './runs.js';
import { registerRunRoutes } from './run-routes.js';

/** Where Bull Board is mounted. */
export const QUEUES_PATH = '/queues';

/** Longest a page or health check waits for Redis before it answers that Redis does not. */
const REDIS_WAIT_MS = 3000;

/** Longest a request waits for a connection to Redis that is being made before it says Redis does not answer. */
const REDIS_READY_WAIT_MS = 1000;

/** Longest close() waits for the Redis connections to close in order; then they are dropped. */
const CLOSE_WAIT_MS = 2000;

/**
 * What Bull Board's pages may load: this server only. Its page asks a third-party font host for
 * its fonts (an operations page that calls out to the internet, and fails offline); the link is
 * taken out of the page, and this policy refuses anything else of the kind.
 */
const BOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/** Stylesheet links of Bull Board's page that point off this server. */
const OUTSIDE_STYLESHEET = /<link\b[^>]*\bhref="https?:\/\/[^"]*"[^>]*>\s*/g;

/** Something the dashboard waited for did not answer in time. */
class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
}

/** `p`, or a {@link NoAnswerError} after `ms` saying what did not answer. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerError(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
    p.catch(() => undefined);
  }
}

/** Options for {@link startDashboard}. */
export interface DashboardOptions {
  settings: QueueSettings;
  /** 0: a free port. @defaultValue 3000 */
  port?: number;
  /**
   * interface to listen on. Beyond loopback every page and API needs the token (one is generated
   * when none is given). @defaultValue '127.0.0.1'
   */
  host?: string;
  /**
   * Bull Board's actions (retry, promote, clean, pause, add, delete; any request but GET/HEAD).
   * They always need the token (generated when none is given). @defaultValue false
   */
  allowActions?: boolean;
  /** no queue actions: the default; `true` together with `allowActions` is an error. @defaultValue true */
  readOnly?: boolean;
  /**
   * the access token (at least 16 characters). When given, every page and API needs it; when
   * not, one is generated if `allowActions` is set or `host` is not loopback (see
   * {@link Dashboard.token}). @defaultValue none
   */
  token?: string;
  /**
   * more names the Host header may carry (the name the dashboard is reached by behind a proxy or
   * in a container network). @defaultValue only localhost, 127.0.0.1, [::1] and `host`
   */
  allowHosts?: string[];
  /** seconds between reloads of the runs page; 0 = none. @defaultValue 5 */
  refreshSeconds?: number;
  /** errors while serving a request. @defaultValue ignored */
  onError?: (err: Error) => void;
  /** problems that do not stop a page, e.g. a run record that fails its schema (once each). @defaultValue a process warning */
  onWarning?: (message: string) => void;
}

/** A running dashboard. */
export interface Dashboard {
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  port: number;
  /** the token in effect, or null when none is asked for (loopback, read-only, none given) */
  token: string | null;
  /** true when {@link token} was generated here: show it to the operator once, e.g. as {@link loginUrl} */
  tokenGenerated: boolean;
  /** what needs the token: every request but the health check, only actions, or nothing */
  tokenFor: 'all' | 'actions' | null;
  /** the runs page with `?token=`, which sets the token cookie in a browser; null without a token */
  loginUrl: string | null;
  close(): Promise<void>;
}

/**
 * Serve Bull Board for the runs, shards and schedules queues at `/queues`, and the runs page
 * (from the run registry) at `/runs`, with the same data as JSON at `/api/runs`.
 */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const { settings } = opts;
  const host = opts.host ?? '127.0.0.1';
  const allowActions = opts.allowActions ?? false;
  if (allowActions && opts.readOnly === true) throw new Error('options.readOnly and options.allowActions contradict each other');
  if (opts.token !== undefined && opts.token.length < MIN_TOKEN_LENGTH) throw new Error(`options.token must be at least ${MIN_TOKEN_LENGTH} characters`);
  const allowedHosts = new Set<string>(LOOPBACK_NAMES);
  for (const h of opts.allowHosts ?? []) {
    try {
      allowedHosts.add(allowedHostName(h));
    } catch (e) {
      throw new Error(`options.allowHosts: ${(e as Error).message}`);
    }
  }
  // the bound address is a name clients use, unless it is every interface
  const everyInterface = host === '0.0.0.0' || host === '::';
  let hostAsName = '127.0.0.1';
  if (!everyInterface) {
    try {
      hostAsName = allowedHostName(host);
    } catch (e) {
      throw new Error(`options.host: ${(e as Error).message}`);
    }
    allowedHosts.add(hostAsName);
  }
  const loopback = isLoopbackHost(host);
  const tokenGenerated = opts.token === undefined && (allowActions || !loopback);
  const token = opts.token ?? (tokenGenerated ? generateToken() : null);

  // reading loses nothing, so only reachability and credentials are checked (not the eviction policy)
  await checkRedis(settings.redisUrl, { allowEviction: true });
  const client = new LayertapClient(settings);
  const onWarning = opts.onWarning;
  if (onWarning) client.registry.on('invalid', (r) => onWarning(`run record ${r.runId} skipped: ${r.problem}`));
  const descriptions: Record<string, string> = {
    [RUNS_QUEUE]: 'one parent job per run; it writes the manifest and _SUCCESS when every shard is done',
    [SHARDS_QUEUE]: 'one job per shard of rows; each becomes one part file',
    [SCHEDULES_QUEUE]: 'ticks of the job schedulers (layertap schedule); each tick enqueues a run',
  };
  const queues = [RUNS_QUEUE, SHARDS_QUEUE, SCHEDULES_QUEUE].map((name) => {
    const q = new Queue(name, { connection: bullConnection(settings.redisUrl), prefix: settings.prefix });
    q.on('error', () => undefined);
    return q;
  });

  const board = new HonoAdapter(serveStatic);
  board.setBasePath(QUEUES_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: !allowActions, description: descriptions[q.name] ?? '' })),
    serverAdapter: board,
    // the runs page says how many workers are connected; Bull Board's per-queue "No workers" reads as an alarm after every run
    options: { uiConfig: { boardTitle: 'layertap', miscLinks: [{ text: 'Runs', url: '/runs' }], showWorkers: false } },
  });

  const policy: AccessPolicy = {
    allowedHosts,
    token,
    tokenFor: loopback && opts.token === undefined ? 'actions' : 'all',
    allowActions,
    // set once listening: the cookie's name carries the port, since browsers share cookies
    // between the ports of one host
    cookie: '',
  };
  const app = new Hono();
  /** Bull Board's responses under this server's policy, its page without the off-site font link. */
  const boardPage: MiddlewareHandler = async (c, next) => {
    await next();
    c.res.headers.set('Content-Security-Policy', BOARD_CSP);
    if (!(c.res.headers.get('content-type') ?? '').startsWith('text/html')) return;
    const page = (await c.res.text()).replace(OUTSIDE_STYLESHEET, '');
    const headers = new Headers(c.res.headers);
    headers.delete('content-length');
    c.res = new Response(page, { status: c.res.status, headers });
  };
  app.onError((err, c) => {
    opts.onError?.(err);
    return c.text(`layertap dashboard: ${err.message}\n`, 500);
  });
  app.use(securityHeaders);
  app.use(accessGuard(policy));
  const shardsQueue = queues[1]!;
  const redisAt = `Redis at ${redactUrl(settings.redisUrl)}`;
  /** Why Redis cannot be read now, or null when it can: a closed connection answers at once instead of waiting to reconnect. */
  const redisDown = async (): Promise<string | null> => {
    // a connection being made (at start, or again after Redis came back) gets a moment
    if (client.redis.status !== 'ready') await within(once(client.redis, 'ready'), REDIS_READY_WAIT_MS, redisAt).catch(() => undefined);
    if (client.redis.status !== 'ready') return `${redisAt} does not answer (connection ${client.redis.status})`;
    try {
      await within(client.redis.ping(), REDIS_WAIT_MS, redisAt);
      return null;
    } catch (err) {
      return `${redisAt} does not answer (${(err as Error).message})`;
    }
  };
  /** The runs and the connected workers, or why Redis did not give them. */
  type RunsRead = { down: string } | { down: null; runs: RunView[]; workers: string[]; name: string | undefined };
  const readRuns = async (c: { req: { query(k: string): string | undefined } }): Promise<RunsRead> => {
    const name = c.req.query('name');
    const limit = Number(c.req.query('limit') ?? 50);
    const down = await redisDown();
    if (down !== null) return { down };
    try {
      const [runs, workers] = await within(
        Promise.all([listRuns(client, { limit: Number.isInteger(limit) && limit > 0 ? limit : 50, ...(name ? { name } : {}) }), connectedWorkers(shardsQueue)]),
        REDIS_WAIT_MS,
        redisAt,
      );
      return { down: null, runs, workers, name };
    } catch (err) {
      // a read that failed because Redis went away says so; any other failure is a bug, shown as one
      const gone = await redisDown();
      if (gone !== null || err instanceof NoAnswerError) return { down: gone ?? (err as Error).message };
      throw err;
    }
  };
  app.get('/', (c) => c.redirect('/runs'));
  app.get('/healthz', async (c) => {
    const down = await redisDown();
    return down === null ? c.text('ok\n') : c.text(`layertap dashboard: ${down}\n`, 503);
  });
  app.get('/runs', async (c) => {
    const r = await readRuns(c);
    const refreshSeconds = opts.refreshSeconds ?? 5;
    // the page has no script and loads nothing: say so, so that markup that slips through cannot run
    c.header('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    if (r.down !== null) return c.html(renderUnavailablePage(r.down, { queuesPath: QUEUES_PATH, refreshSeconds, prefix: settings.prefix }), 503);
    return c.html(
      renderRunsPage(r.runs, {
        queuesPath: QUEUES_PATH,
        refreshSeconds,
        prefix: settings.prefix,
        workers: r.workers,
        ...(r.name ? { name: r.name } : {}),
      }),
    );
  });
  const closeRunRoutes = registerRunRoutes(app, {
    record: async (runId) => {
      const down = await redisDown();
      if (down !== null) return { down };
      return { record: await within(client.registry.get(runId), REDIS_WAIT_MS, redisAt) };
    },
  });
  app.get('/api/runs', async (c) => {
    const r = await readRuns(c);
    if (r.down !== null) return c.json({ error: r.down }, 503);
    return c.json({ runs: r.runs, workers: { connected: r.workers.length, names: r.workers } });
  });
  // Bull Board's API waits for Redis as long as BullMQ does (for ever): answer at once instead
  app.use(`${QUEUES_PATH}/api/*`, async (c, next) => {
    const down = await redisDown();
    if (down !== null) return c.json({ error: down }, 503);
    await next();
  });
  app.use(QUEUES_PATH, boardPage);
  app.use(`${QUEUES_PATH}/*`, boardPage);
  app.route(QUEUES_PATH, board.registerPlugin());
  app.notFound((c) => c.html(`<p>Not found: ${escapeHtml(c.req.path)}. See <a href="/runs">runs</a> or <a href="${QUEUES_PATH}">queues</a>.</p>`, 404));

  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: opts.port ?? DEFAULTS.ops.dashboardPort, hostname: host }, () => resolve(s));
    s.once('error', reject);
  }).catch(async (err: unknown) => {
    await Promise.allSettled([client.close(), ...queues.map((q) => q.close())]);
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  policy.cookie = `layertap_dashboard_${port}`;
  // on every interface, loopback is one of them (and an allowed Host)
  const url = `http://${hostAsName}:${port}`;
  return {
    url,
    port,
    token,
    tokenGenerated,
    tokenFor: token === null ? null : policy.tokenFor,
    loginUrl: token === null ? null : `${url}/runs?token=${encodeURIComponent(token)}`,
    close: async () => {
      if ('closeAllConnections' in server) server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await closeRunRoutes();
      // with Redis gone an orderly close waits for a reconnection that may never come: drop the connections instead
      await within(Promise.allSettled([client.close(), ...queues.map((q) => q.close())]), CLOSE_WAIT_MS, 'closing').catch(() => undefined);
      client.redis.disconnect();
      await Promise.allSettled(queues.map((q) => q.disconnect()));
    },
  };
}
