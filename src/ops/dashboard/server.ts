import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serve } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { Queue } from 'bullmq';
import { Hono } from 'hono';
import { LayertapClient } from '../../queue/client.js';
import { bullConnection, type QueueSettings } from '../../queue/connection.js';
import { checkRedis } from '../../queue/redis-checks.js';
import { SCHEDULES_QUEUE } from '../../queue/schedules.js';
import { RUNS_QUEUE, SHARDS_QUEUE } from '../../queue/types.js';
import { DEFAULT_DASHBOARD_PORT } from './defaults.js';
import { escapeHtml, renderRunsPage } from './runs-page.js';
import { listRuns } from './runs.js';

/** Where Bull Board is mounted. */
export const QUEUES_PATH = '/queues';

/** Options for {@link startDashboard}. */
export interface DashboardOptions {
  settings: QueueSettings;
  /** 0: a free port. @defaultValue 3000 */
  port?: number;
  /** interface to listen on; the dashboard can retry and delete jobs, so it is not exposed unless asked. @defaultValue '127.0.0.1' */
  host?: string;
  /** Bull Board without retry, clean, pause or delete buttons. @defaultValue false */
  readOnly?: boolean;
  /** seconds between reloads of the runs page; 0 = none. @defaultValue 5 */
  refreshSeconds?: number;
  /** errors while serving a request. @defaultValue ignored */
  onError?: (err: Error) => void;
}

/** A running dashboard. */
export interface Dashboard {
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  port: number;
  close(): Promise<void>;
}

export { DEFAULT_DASHBOARD_PORT };

/**
 * Serve Bull Board for the runs, shards and schedules queues at `/queues`, and the runs page
 * (from the run registry) at `/runs`, with the same data as JSON at `/api/runs`.
 */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const { settings } = opts;
  // reading loses nothing, so only reachability and credentials are checked (not the eviction policy)
  await checkRedis(settings.redisUrl, { allowEviction: true });
  const client = new LayertapClient(settings);
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
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: opts.readOnly ?? false, description: descriptions[q.name] ?? '' })),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'layertap', miscLinks: [{ text: 'Runs', url: '/runs' }] } },
  });

  const app = new Hono();
  app.onError((err, c) => {
    opts.onError?.(err);
    return c.text(`layertap dashboard: ${err.message}\n`, 500);
  });
  app.get('/', (c) => c.redirect('/runs'));
  app.get('/healthz', (c) => c.text('ok\n'));
  app.get('/runs', async (c) => {
    const name = c.req.query('name');
    const limit = Number(c.req.query('limit') ?? 50);
    const runs = await listRuns(client, { limit: Number.isInteger(limit) && limit > 0 ? limit : 50, ...(name ? { name } : {}) });
    return c.html(renderRunsPage(runs, { queuesPath: QUEUES_PATH, refreshSeconds: opts.refreshSeconds ?? 5, prefix: settings.prefix, ...(name ? { name } : {}) }));
  });
  app.get('/api/runs', async (c) => {
    const name = c.req.query('name');
    const limit = Number(c.req.query('limit') ?? 50);
    return c.json({ runs: await listRuns(client, { limit: Number.isInteger(limit) && limit > 0 ? limit : 50, ...(name ? { name } : {}) }) });
  });
  app.route(QUEUES_PATH, board.registerPlugin());
  app.notFound((c) => c.html(`<p>Not found: ${escapeHtml(c.req.path)}. See <a href="/runs">runs</a> or <a href="${QUEUES_PATH}">queues</a>.</p>`, 404));

  const host = opts.host ?? '127.0.0.1';
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: opts.port ?? DEFAULT_DASHBOARD_PORT, hostname: host }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shown}:${port}`,
    port,
    close: async () => {
      if ('closeAllConnections' in server) server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await Promise.allSettled([client.close(), ...queues.map((q) => q.close())]);
    },
  };
}
