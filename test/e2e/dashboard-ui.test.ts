import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/sources/npy.js';
import { findBinary } from '../helpers/binaries.js';
import { runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

const chromiumBinary = findBinary('chromium', 'apt-get install -y chromium');
const CHROMIUM = chromiumBinary.path ?? 'chromium';
const hasChromium = chromiumBinary.path !== null;
if (!hasChromium) console.warn(`dashboard UI test skipped: ${chromiumBinary.missing}`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

// `layertap dashboard` as a person sees it: a finished run on the runs page, and Bull Board
// showing layertap's queues, in headless Chromium. LAYERTAP_SCREENSHOTS=dir keeps the screenshots.
describe.skipIf(!hasChromium)(`layertap dashboard in headless Chromium${hasChromium ? '' : ` (skipped: ${CHROMIUM} is missing)`}`, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };
  let dashboard: CliProcess | null = null;
  let browser: BrowserContext | null = null;
  let url = '';
  let run: { runId: string; rows: number; errorRows: number; status: string; output: { uri: string } };
  let shots = '';
  // every request the pages make to anything but this dashboard: refused, and kept here
  const outside: string[] = [];

  beforeAll(async () => {
    tmp = await tempDir();
    shots = process.env.LAYERTAP_SCREENSHOTS ?? tmp.dir;
    await mkdir(shots, { recursive: true });
    const n = 24;
    const data = new Float32Array(n * 28 * 28);
    for (let i = 0; i < data.length; i++) data[i] = Math.cos(i * 0.21) * 0.5 + 0.5;
    await writeNpy(join(tmp.dir, 'rows.npy'), data, [n, 28, 28, 1]);
    const job = {
      name: 'dashboard-demo',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
      batchSize: 4,
      shardSize: 8,
      sink: { uri: join(tmp.dir, 'out') },
    };
    await writeFile(join(tmp.dir, 'job.json'), JSON.stringify(job));
    const r = await runCli(['run', join(tmp.dir, 'job.json'), '--threads', '1', '--json'], env, 30_000);
    expect(r.code, r.stderr).toBe(0);
    run = JSON.parse(r.stdout);

    const port = await freePort();
    dashboard = startCli(['dashboard', '--port', String(port)], env);
    await dashboard.waitFor('layertap dashboard: ready', 15_000);
    url = `http://127.0.0.1:${port}`;
    browser = await chromium.launchPersistentContext(join(tmp.dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 800 },
    });
    // a closed network: only the dashboard answers (an operations page must not call out to the internet)
    await browser.route('**/*', (route) => {
      const target = route.request().url();
      if (target.startsWith('http://127.0.0.1:')) return route.continue();
      outside.push(target);
      return route.abort('blockedbyclient');
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (dashboard) expect(await dashboard.stop('SIGTERM')).toBe(0);
    await cleanup();
    await tmp.remove();
  });

  it('lists the finished run with its status, rows, rate, errors and output location', async () => {
    expect(run.status).toBe('committed');
    const page = await browser!.newPage();
    await page.goto(`${url}/runs`);
    const row = page.locator(`tr[data-run-id="${run.runId}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('td.run').innerText()).toBe(run.runId);
    expect(await row.locator('.status').innerText()).toBe('committed');
    expect(await row.locator('td.rows').innerText()).toBe(String(run.rows));
    expect(run.rows).toBe(24);
    expect(await row.locator('td.errors').innerText()).toBe(String(run.errorRows));
    expect(Number(await row.locator('td.rate').innerText())).toBeGreaterThan(0);
    expect(await row.locator('td.out').innerText()).toBe(run.output.uri);
    expect(await row.innerText()).toContain('dashboard-demo');
    // after a run no worker is connected, and the page says that is normal
    expect(await page.locator('p.workers').innerText()).toBe(
      'Workers: none connected now. That is normal when no run is queued; runs queued with layertap enqueue or a schedule wait for a layertap worker (a layertap run works its own run and is not counted).',
    );
    await page.screenshot({ path: join(shots, 'dashboard-runs.png'), fullPage: true });

    // the same data as JSON
    const api = (await (await fetch(`${url}/api/runs`)).json()) as { runs: Array<{ runId: string; status: string; rows: number }> };
    expect(api.runs.map((r) => [r.runId, r.status, r.rows])).toEqual([[run.runId, 'committed', 24]]);
    await page.close();
  }, 30_000);

  it('serves Bull Board with the runs, shards and schedules queues', async () => {
    const page = await browser!.newPage();
    const failed: string[] = [];
    // requests to this server must all succeed (outside fonts are blocked on a closed network)
    page.on('response', (r) => {
      if (r.url().startsWith(url) && r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(`${url}/queues`);
    for (const name of ['runs', 'shards', 'schedules']) {
      await page.getByRole('link', { name, exact: true }).first().waitFor({ timeout: 15_000 });
    }
    // `run` works its run in queues of its own; a run enqueued for the deployment's workers goes
    // through the shared queues: after it, the shards queue holds its three completed shard jobs
    const worker = startCli(['worker', '--threads', '1'], env);
    let enqueued = '';
    try {
      await worker.waitFor('layertap worker: ready', 20_000);
      const enq = await runCli(['enqueue', join(tmp.dir, 'job.json'), '--json'], env);
      expect(enq.code, enq.stderr).toBe(0);
      enqueued = (JSON.parse(enq.stdout) as { runId: string }).runId;
      const end = Date.now() + 30_000;
      for (let status = ''; status !== 'committed'; await new Promise((r) => setTimeout(r, 250))) {
        if (Date.now() > end) throw new Error(`run ${enqueued} is still ${status} after 30 s:\n${worker.stderr()}`);
        status = (JSON.parse((await runCli(['status', enqueued, '--json'], env)).stdout) as { status: string }).status;
      }
    } finally {
      expect(await worker.stop('SIGTERM')).toBe(0);
    }
    await page.goto(`${url}/queues/queue/shards?status=completed`);
    await page.getByText(`${enqueued}-2`).first().waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(shots, 'dashboard-bull-board.png'), fullPage: true });
    expect(failed).toEqual([]);
    // no orange "No workers" on the queue cards between runs: the runs page says how many are connected
    await page.goto(`${url}/queues`);
    await page.getByRole('link', { name: 'shards', exact: true }).first().waitFor({ timeout: 15_000 });
    expect(await page.getByText('No workers').count()).toBe(0);
    await page.close();
    // the fonts come from this machine or not at all
    expect(outside).toEqual([]);
  }, 30_000);

  it('the runs page counts the connected workers by name', async () => {
    const worker = startCli(['worker', '--threads', '1'], env);
    try {
      await worker.waitFor('layertap worker: ready', 20_000);
      const name = /name ([^)\s]+)\)/.exec(worker.stderr())![1]!;
      const page = await browser!.newPage();
      await page.goto(`${url}/runs`);
      expect(await page.locator('p.workers').innerText()).toBe(`Workers: 1 connected (${name}).`);
      const api = (await (await fetch(`${url}/api/runs`)).json()) as { workers: { connected: number; names: string[] } };
      expect(api.workers).toEqual({ connected: 1, names: [name] });
      await page.close();
    } finally {
      expect(await worker.stop('SIGTERM')).toBe(0);
    }
    expect(outside).toEqual([]);
  }, 40_000);

  it("with --allow-actions, Bull Board's own buttons work after the printed ?token= URL; without the token they do not", async () => {
    const shards = new Queue('shards', { connection: { url: REDIS_URL }, prefix });
    const port = await freePort();
    const acting = startCli(['dashboard', '--port', String(port), '--allow-actions'], env);
    try {
      await acting.waitFor('/runs?token=', 15_000);
      const login = /open (http:\/\/\S+\/runs\?token=\S+)/.exec(acting.stderr())![1]!;
      const own = `http://127.0.0.1:${port}`;
      expect(login.startsWith(`${own}/runs?token=`)).toBe(true);
      const noToken = await fetch(`${own}/queues/api/queues/shards/pause`, { method: 'PUT', headers: { origin: own } });
      expect([noToken.status, await noToken.text()]).toEqual([
        401,
        'layertap dashboard: a token is required: open the URL with ?token= printed at start, or send Authorization: Bearer <token>\n',
      ]);
      expect(await shards.isPaused()).toBe(false);

      const page = await browser!.newPage();
      await page.goto(login);
      expect(page.url()).toBe(`${own}/runs`);
      const cookie = (await browser!.cookies(own)).find((c) => c.name === `layertap_dashboard_${port}`);
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
      // the queue's menu, Pause, Confirm: the request Bull Board sends carries its origin and the cookie
      await page.goto(`${own}/queues/queue/shards`);
      await page.locator('button[aria-haspopup="menu"]:has(svg.lucide-ellipsis-vertical)').click();
      const sent = page.waitForResponse((r) => r.url() === `${own}/queues/api/queues/shards/pause`);
      await page.getByRole('menuitem', { name: 'Pause' }).click();
      await page.getByRole('button', { name: 'Confirm', exact: true }).click();
      expect((await sent).status()).toBe(200);
      expect(await shards.isPaused()).toBe(true);
      await page.close();
      // the read-only dashboard of the other tests refuses the same request from its own origin
      const readOnly = await fetch(`${url}/queues/api/queues/shards/resume`, { method: 'PUT', headers: { origin: url } });
      expect(readOnly.status).toBe(403);
      expect(await shards.isPaused()).toBe(true);
    } finally {
      await shards.resume();
      await shards.close();
      expect(await acting.stop('SIGTERM')).toBe(0);
    }
  }, 60_000);
});
