import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient } from '../../src/queue/client.js';
import { runJob } from '../../src/queue/run.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { featureRows, maxAbsDiff, readArrow, REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { duplicates, readRunFolder, waitForFinal } from './reliability-harness.js';

// Swaps `sub` for a symlink to the outside folder and back, as fast as it can, until the stop
// file exists or the time is up; leaves `sub` as it was, and prints how many swaps it made.
const SWAPPER = `
const fs = require('node:fs');
const [sub, aside, target, stop, ms] = process.argv.slice(1);
const end = Date.now() + Number(ms);
const spin = (us) => { const t = process.hrtime.bigint() + BigInt(us) * 1000n; while (process.hrtime.bigint() < t); };
let swaps = 0;
process.stdout.write('swapping\\n');
while (Date.now() < end && !fs.existsSync(stop)) {
  fs.renameSync(sub, aside);
  fs.symlinkSync(target, sub);
  spin(300);
  fs.unlinkSync(sub);
  fs.renameSync(aside, sub);
  spin(3000);
  swaps++;
}
process.stdout.write(String(swaps));
`;

const N_SUB = 240;
const N_TOP = 20;

const picture = (r: number, g: number, b: number) =>
  sharp({ create: { width: 40, height: 36, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();

// A process swaps a folder of the dataset for a symlink to pictures outside it while a real run
// reads it: outside pictures (red) must never reach a committed row; every row of the folder
// is an inside picture (blue) or a `read` error row naming its file.
describe('a dataset folder swapped for a symlink during a run', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const prefixes: Array<ReturnType<typeof testPrefix>> = [];
  const newPrefix = () => {
    const p = testPrefix();
    prefixes.push(p);
    return p;
  };

  beforeAll(async () => {
    tmp = await tempDir('layertap-symrace-');
  });
  afterAll(async () => {
    for (const p of prefixes) await p.cleanup();
    await tmp.remove();
  });

  it('commits no row of an outside picture', async () => {
    const [blue, red] = await Promise.all([picture(20, 40, 220), picture(230, 20, 10)]);
    const root = join(tmp.dir, 'images');
    const outside = join(tmp.dir, 'outside');
    await mkdir(join(root, 'sub'), { recursive: true });
    await mkdir(outside);
    const name = (i: number) => `img-${String(i).padStart(3, '0')}.png`;
    for (let i = 0; i < N_SUB; i++) {
      await writeFile(join(root, 'sub', name(i)), blue);
      await writeFile(join(outside, name(i)), red);
    }
    for (let i = 0; i < N_TOP; i++) await writeFile(join(root, `top-${i}.png`), blue);
    const ref = join(tmp.dir, 'ref');
    await mkdir(ref);
    await writeFile(join(ref, 'blue.png'), blue);
    await writeFile(join(ref, 'red.png'), red);

    const job = (name: string, uri: string) =>
      parseJob({
        name,
        source: { uri },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_1.0' }],
        batchSize: 8,
        shardSize: 20,
        sink: { uri: join(tmp.dir, 'out') },
      });

    // each colour embedded alone
    const refRun = await runJob(job('ref', ref), { settings: { redisUrl: REDIS_URL, prefix: newPrefix().prefix }, threads: 1 });
    expect(refRun.status).toBe('committed');
    const refTable = await readArrow(refRun.output.files[0]!);
    const [blueRef, redRef] = featureRows(refTable, 'linear_1_0') as [Float32Array, Float32Array];
    expect(String(refTable.getChild('id')!.get(0))).toBe('blue.png');
    const apart = maxAbsDiff(blueRef, redRef);
    expect(apart).toBeGreaterThan(1e-2);

    const settings = { redisUrl: REDIS_URL, prefix: newPrefix().prefix };
    const client = new LayertapClient(settings);
    const worker = new LayertapWorker({ settings, threads: 2, log: () => undefined });
    const stop = join(tmp.dir, 'stop');
    let swapper: ReturnType<typeof spawn> | null = null;
    try {
      // planned before the swapping starts, so that every file of `sub` is in the plan
      const rec = await client.enqueue(await resolveJob(job('race', root)));
      expect(rec.totalRows).toBe(N_SUB + N_TOP);
      swapper = spawn(process.execPath, ['-e', SWAPPER, join(root, 'sub'), join(root, 'sub.real'), '../outside', stop, '60000'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let swapsOut = '';
      const swapping = new Promise<void>((resolve) =>
        swapper!.stdout!.on('data', (d: Buffer) => {
          swapsOut += d.toString();
          resolve();
        }),
      );
      const exited = new Promise<number | null>((resolve) => swapper!.once('exit', resolve));
      await Promise.race([swapping, exited]);
      await worker.start();
      const s = await waitForFinal(client, rec.runId, 90_000);
      await writeFile(stop, '');
      expect(await exited).toBe(0);
      const swaps = Number(swapsOut.split('\n')[1]);
      expect(s.status).toBe('committed');

      const folder = await readRunFolder(s.output.uri);
      expect(duplicates(folder)).toEqual([]);
      const all = [...Array.from({ length: N_SUB }, (_, i) => `sub/${name(i)}`), ...Array.from({ length: N_TOP }, (_, i) => `top-${i}.png`)].sort();
      expect([...folder.featureIds.keys(), ...folder.errorIds.keys()].sort()).toEqual(all);

      // no committed row is an outside picture: each is the inside picture, embedded alone
      const features = new Map<string, Float32Array>();
      for (const f of s.output.files) {
        const t = await readArrow(f);
        const ids = t.getChild('id')!;
        featureRows(t, 'linear_1_0').forEach((row, i) => features.set(String(ids.get(i)), row));
      }
      expect([...features].filter(([, row]) => maxAbsDiff(row, redRef) < apart / 2).map(([id]) => id)).toEqual([]);
      expect([...features].filter(([, row]) => maxAbsDiff(row, blueRef) > 1e-5).map(([id]) => id)).toEqual([]);

      // the rows the swaps caught are read errors naming their file; top-level files are never caught
      const forms = (id: string) => [
        `${id}: cannot read ${join(root, ...id.split('/'))}: no such file or directory (ENOENT)`,
        `${id}: symlink resolves to ${join(outside, id.slice('sub/'.length))}, which leaves the dataset root ${root}`,
      ];
      for (const e of folder.errors) {
        expect(e.stage).toBe('read');
        expect(e.id.startsWith('sub/')).toBe(true);
        expect(forms(e.id)).toContain(e.message);
      }
      // the race was run: the swapper swapped while files of `sub` were read
      expect(swaps).toBeGreaterThan(0);
      expect(folder.errors.length).toBeGreaterThan(0);
      console.log(`symlink race: ${swaps} swaps; ${features.size} rows committed, ${folder.errors.length} read error rows, 0 outside`);
    } finally {
      await writeFile(stop, '').catch(() => undefined);
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 180_000);
});
