import type { Hono } from 'hono';
import { SearchInputError } from '../../pipeline/search/errors.js';
import { MAP_METHODS, mapRun, type MapMethod, type RunMap } from '../../pipeline/search/map.js';
import { neighbours } from '../../pipeline/search/nearest.js';
import { openRun } from '../../pipeline/search/run-ref.js';
import type { RunRecord } from '../../pipeline/types.js';
import { ScanPool } from '../../workers/scan-pool.js';
import { loadRunDetail, sourceImage } from './run-detail.js';
import { RUN_PAGE_CSP, RUN_PAGE_SCRIPT_PATH, renderRunPage } from './run-page.js';
import { RUN_PAGE_SCRIPT } from './run-page-script.js';
import { escapeHtml } from './runs-page.js';

/** Maps kept in memory, newest last: a page that changes tap or method back and forth does not recompute. */
const MAP_CACHE = 6;
/** Side of a thumbnail, in pixels. */
const THUMB_PX = 128;

/** What the run pages need from the server: a run's record (null when there is none), or why Redis cannot give it. */
export interface RunRoutesOptions {
  record(runId: string): Promise<{ record: RunRecord | null } | { down: string }>;
  /** threads that read part files for maps and neighbours. @defaultValue 2 */
  threads?: number;
}

/** The routes of the run pages. Returns a function that stops their threads. */
export function registerRunRoutes(app: Hono, opts: RunRoutesOptions): () => Promise<void> {
  let pool: ScanPool | null = null;
  const scanPool = () => (pool ??= new ScanPool({ threads: opts.threads ?? 2 }));
  const maps = new Map<string, Promise<RunMap>>();

  /** The run's record, or a response that says why there is none. */
  const recordOf = async (runId: string): Promise<RunRecord | Response> => {
    const r = await opts.record(runId);
    if ('down' in r) return Response.json({ error: r.down }, { status: 503 });
    if (!r.record) return Response.json({ error: `no run with id '${runId}'` }, { status: 404 });
    return r.record;
  };
  /** Bad input (an unknown tap or id, a run that is not committed) is the client's: 400 with the reason. */
  const answer = async (fn: () => Promise<Response>): Promise<Response> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SearchInputError)
        return Response.json({ error: err.message, ...(err.choices.length ? { choices: err.choices } : {}) }, { status: 400 });
      throw err;
    }
  };

  app.get(RUN_PAGE_SCRIPT_PATH, (c) => c.body(RUN_PAGE_SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' }));

  app.get('/runs/:runId', async (c) => {
    const runId = c.req.param('runId');
    c.header('Content-Security-Policy', RUN_PAGE_CSP);
    const r = await opts.record(runId);
    if ('down' in r) return c.html(`<p>${escapeHtml(r.down)}. <a href="/runs">Runs</a></p>`, 503);
    if (!r.record) return c.html(`<p>No run with id <code>${escapeHtml(runId)}</code>. See <a href="/runs">runs</a>.</p>`, 404);
    return c.html(renderRunPage(await loadRunDetail(r.record)));
  });

  app.get('/api/runs/:runId/map', async (c) => {
    const record = await recordOf(c.req.param('runId'));
    if (record instanceof Response) return record;
    return answer(async () => {
      const run = await openRun(record.outputUri);
      const method = (c.req.query('method') ?? 'pca') as MapMethod;
      if (!MAP_METHODS.includes(method)) throw new SearchInputError(`unknown method '${method}'; methods are: ${MAP_METHODS.join(', ')}`, [...MAP_METHODS]);
      const tap = c.req.query('tap') || undefined;
      const key = JSON.stringify([record.runId, tap ?? null, method]);
      let map = maps.get(key);
      if (!map) {
        map = mapRun(run, { pool: scanPool(), method, ...(tap ? { tap } : {}) });
        maps.set(key, map);
        map.catch(() => maps.delete(key));
        while (maps.size > MAP_CACHE) maps.delete(maps.keys().next().value!);
      }
      const m = await map;
      const points = m.ids.map((id, i) => ({ ...m.carried[i], id, x: m.x[i]!, y: m.y[i]! }));
      return Response.json({ runId: m.runId, tap: m.tap, method: m.method, rows: m.rows, points });
    });
  });

  app.get('/api/runs/:runId/neighbours', async (c) => {
    const record = await recordOf(c.req.param('runId'));
    if (record instanceof Response) return record;
    return answer(async () => {
      const id = c.req.query('id');
      if (id === undefined) throw new SearchInputError('give the row as ?id=');
      const k = Math.min(100, Math.max(1, Number(c.req.query('k') ?? 10) || 10));
      const tap = c.req.query('tap') || undefined;
      const run = await openRun(record.outputUri);
      const r = await neighbours(run, id, { pool: scanPool(), k, ...(tap ? { tap } : {}) });
      return Response.json({ ...r.carried, id: r.id, tap: r.tap, neighbours: r.neighbours.map((h) => ({ ...h.carried, id: h.id, score: h.score })) });
    });
  });

  app.get('/api/runs/:runId/thumb', async (c) => {
    const record = await recordOf(c.req.param('runId'));
    if (record instanceof Response) return record;
    return answer(async () => {
      const run = await openRun(record.outputUri);
      const bytes = await sourceImage(run.manifest, c.req.query('id') ?? '');
      if (!bytes) return Response.json({ error: 'no such image in the run' }, { status: 404 });
      const { default: sharp } = await import('sharp');
      const jpeg = await sharp(bytes).resize(THUMB_PX, THUMB_PX, { fit: 'cover' }).jpeg({ quality: 80 }).toBuffer();
      return new Response(new Uint8Array(jpeg), { headers: { 'Content-Type': 'image/jpeg', 'Cache-Control': 'max-age=300' } });
    });
  });

  return async () => {
    await pool?.close();
  };
}
