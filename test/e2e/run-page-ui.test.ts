import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../helpers/binaries.js';
import { runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

const chromiumBinary = findBinary('chromium', 'apt-get install -y chromium');
const CHROMIUM = chromiumBinary.path ?? 'chromium';
const hasChromium = chromiumBinary.path !== null;
if (!hasChromium) console.warn(`run page UI test skipped: ${chromiumBinary.missing}`);

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

interface Neighbours {
  id: string;
  tap: string;
  neighbours: Array<{ id: string; score: number }>;
}

// The page of one run, as a person sees it in headless Chromium: the manifest in words, a map of
// an image run's rows coloured by folder, and a click on a point that lists its nearest rows as
// thumbnails. LAYERTAP_SCREENSHOTS=dir keeps the screenshot (docs/run-page.png is one).
describe.skipIf(!hasChromium)(`the run page in headless Chromium${hasChromium ? '' : ` (skipped: ${CHROMIUM} is missing)`}`, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };
  let dashboard: CliProcess | null = null;
  let browser: BrowserContext | null = null;
  let url = '';
  let run: { runId: string; rows: number; errorRows: number; output: { uri: string } };
  let shots = '';
  const outside: string[] = [];

  beforeAll(async () => {
    tmp = await tempDir();
    shots = process.env.LAYERTAP_SCREENSHOTS ?? tmp.dir;
    await mkdir(shots, { recursive: true });
    const images = join(tmp.dir, 'images');
    const demo = await runCli(['demo-data', images], env, 60_000);
    expect(demo.code, demo.stderr).toBe(0);
    // one file that is not an image: an error row with its message
    await writeFile(join(images, 'not-an-image.png'), 'plain text');
    const job = {
      name: 'run-page-demo',
      source: { uri: images },
      model: { uri: SEED_MODEL },
      preprocess: { fit: 'cover', range: [0, 1] },
      taps: [
        { layer: 'conv_32.1', reduce: 'mean', as: 'pooled' },
        { layer: 'linear_1.1', as: 'hidden' },
      ],
      batchSize: 8,
      shardSize: 16,
      sink: { uri: join(tmp.dir, 'out') },
    };
    await writeFile(join(tmp.dir, 'job.json'), JSON.stringify(job));
    const r = await runCli(['run', join(tmp.dir, 'job.json'), '--threads', '1', '--json'], env, 60_000);
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
      viewport: { width: 1400, height: 1000 },
    });
    await browser.route('**/*', (route) => {
      const target = route.request().url();
      if (target.startsWith('http://127.0.0.1:')) return route.continue();
      outside.push(target);
      return route.abort('blockedbyclient');
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (dashboard) expect(await dashboard.stop('SIGTERM')).toBe(0);
    await cleanup();
    await tmp.remove();
  });

  it('is linked from the runs table and says the manifest in words: taps, rows, errors with their messages, backend', async () => {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    await page.goto(`${url}/runs`);
    await page.locator(`tr[data-run-id="${run.runId}"] td.run a`).click();
    await page.waitForURL(`${url}/runs/${run.runId}`);
    expect(await page.locator('dd[data-field="rows"]').innerText()).toBe(`${run.rows} embedded of ${run.rows + 1}`);
    expect(run.errorRows).toBe(1);
    expect(await page.locator('dd[data-field="error rows"]').innerText()).toBe('1');
    expect(await page.locator('dd[data-field="backend"]').innerText()).not.toBe('-');
    expect(
      await page.locator('#taps tbody tr').evaluateAll((rows) => rows.map((r) => (r as unknown as { innerText: string }).innerText.split('\t').slice(0, 4))),
    ).toEqual([
      ['pooled', 'conv_32.1 (output)', '[32]', 'mean'],
      ['hidden', 'linear_1.1 (output)', '[64]', 'none'],
    ]);
    const errorRow = (await page.locator('#errors tbody tr').innerText()).split('\t');
    expect(errorRow.slice(0, 2)).toEqual(['not-an-image.png', 'decode']);
    expect(errorRow[2]!.length).toBeGreaterThan(0);
    expect(problems).toEqual([]);
    await page.close();
  }, 30_000);

  it('draws the map; a click on a point lists its nearest rows with thumbnails, the same as the CLI', async () => {
    const page = await browser!.newPage();
    await page.goto(`${url}/runs/${run.runId}`);
    await page.locator(`#map[data-points="${run.rows}"]`).waitFor({ timeout: 20_000 });
    expect(await page.locator('#map-status').innerText()).toBe(`${run.rows} points of ${run.rows} rows, pca of pooled`);
    // coloured by folder: the demo's six folders
    expect((await page.locator('#legend span').allInnerTexts()).map((t) => t.replace(/ \(\d+\)$/, '')).sort()).toEqual([
      'checkers',
      'city',
      'forest',
      'stripes',
      'sunset',
      'target',
    ]);
    const id = 'forest/original.jpg';
    const at = await page.evaluate(
      (i) => (globalThis as unknown as { layertapMap: { at(id: string): { x: number; y: number } | null } }).layertapMap.at(i),
      id,
    );
    expect(at).not.toBeNull();
    await page.locator('#map').scrollIntoViewIfNeeded();
    const box = (await page.locator('#map').boundingBox())!;
    // hovering shows the id and a thumbnail
    await page.mouse.move(box.x + at!.x, box.y + at!.y);
    await page.locator('#tooltip code').waitFor({ state: 'visible', timeout: 5000 });
    const tipId = await page.locator('#tooltip code').innerText();
    await page.mouse.click(box.x + at!.x, box.y + at!.y);
    await page.locator('#neighbour-list li').first().waitFor({ timeout: 20_000 });
    const shown = await page.locator('#neighbour-list li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-id')));
    // the point clicked (or one drawn on top of it) and its neighbours as the CLI lists them
    const cli = await runCli(['neighbours', run.output.uri, tipId, '-k', '12', '--tap', 'pooled', '--json'], {}, 60_000);
    expect(cli.code, cli.stderr).toBe(0);
    expect(shown).toEqual((JSON.parse(cli.stdout) as Neighbours).neighbours.map((n) => n.id));
    expect(await page.locator('#neighbours-of').innerText()).toBe(`12 nearest to ${tipId} in pooled (cosine, whole run)`);
    // thumbnails load from the run's source folder
    const loaded = await page.locator('#neighbour-list img').evaluateAll((imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
    expect(loaded).toEqual(Array.from({ length: 12 }, () => 128));
    await page.mouse.move(box.x + at!.x, box.y + at!.y);
    await page.screenshot({ path: join(shots, 'run-page.png'), fullPage: true });
    expect(outside).toEqual([]);
    await page.close();
  }, 60_000);

  it('serves the map as JSON, UMAP too, and says what is wrong with a tap, an id or a run', async () => {
    const map = (await (await fetch(`${url}/api/runs/${run.runId}/map?tap=hidden&method=umap`)).json()) as {
      tap: string;
      method: string;
      points: Array<{ id: string; x: number; y: number }>;
    };
    expect([map.tap, map.method, map.points.length]).toEqual(['hidden', 'umap', run.rows]);
    expect(map.points.every((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && typeof p.id === 'string')).toBe(true);
    const bad = await fetch(`${url}/api/runs/${run.runId}/map?tap=nope`);
    expect([bad.status, await bad.json()]).toEqual([400, { error: "unknown tap 'nope'; taps are: pooled, hidden", choices: ['pooled', 'hidden'] }]);
    const id = await fetch(`${url}/api/runs/${run.runId}/neighbours?id=nope`);
    expect([id.status, await id.json()]).toEqual([400, { error: `unknown id 'nope': no row of run ${run.runId} has it` }]);
    const none = await fetch(`${url}/api/runs/nope/map`);
    expect([none.status, await none.json()]).toEqual([404, { error: "no run with id 'nope'" }]);
    const escape = await fetch(`${url}/api/runs/${run.runId}/thumb?id=${encodeURIComponent('../job.json')}`);
    expect(escape.status).toBe(404);
  }, 60_000);
});
