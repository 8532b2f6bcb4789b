import { copyFile, mkdir, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient } from '../../src/queue/client.js';
import { runJob } from '../../src/queue/run.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { writeNpy } from '../../src/sources/npy.js';
import { runCli } from '../helpers/cli.js';
import { makeFifo, releaseFifo } from '../helpers/fifo.js';
import { featureRows, maxAbsDiff, readArrow, REDIS_URL, SEED, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { duplicates, readManifest, readRunFolder, rowValue, waitForFinal } from './reliability-harness.js';
import { bombPng } from '../helpers/images.js';

const solid = (channels: 3 | 4, r: number, g: number, b: number, alpha = 1) =>
  sharp({ create: { width: 40, height: 36, channels, background: { r, g, b, alpha } } });

// Bad rows in real runs: each becomes an error row (id, stage, message) and the rest of its
// shard is written; odd but valid images are converted, not failed; bad datasets and models
// are refused before anything is queued.
describe('bad input in a run', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const prefixes: Array<ReturnType<typeof testPrefix>> = [];
  const newPrefix = () => {
    const p = testPrefix();
    prefixes.push(p);
    return p;
  };

  beforeAll(async () => {
    tmp = await tempDir('layertap-badinput-');
  });
  afterAll(async () => {
    for (const p of prefixes) await p.cleanup();
    await tmp.remove();
  });

  it('turns rows with NaN or Inf inputs, and rows whose features overflow, into error rows and writes the others', async () => {
    const n = 40;
    const per = 28 * 28;
    const data = new Float32Array(n * per);
    for (let i = 0; i < n; i++) for (let k = 0; k < per; k++) data[i * per + k] = rowValue(i, k);
    data[3 * per + 10] = Number.NaN;
    data[17 * per + 400] = Number.NaN;
    data[25 * per + 300] = Number.POSITIVE_INFINITY;
    data[31 * per + 5] = Number.NEGATIVE_INFINITY;
    // finite inputs whose features are not: the first conv overflows float32
    data.fill(3e38, 9 * per, 10 * per);
    await writeNpy(join(tmp.dir, 'nan.npy'), data, [n, 28, 28, 1]);
    const { prefix } = newPrefix();
    const summary = await runJob(
      parseJob({
        name: 'nan',
        source: { uri: join(tmp.dir, 'nan.npy') },
        model: { uri: SEED_MODEL },
        taps: [
          { layer: 'linear_class.0', at: 'input', as: 'hidden' },
          { layer: 'conv_16.0', reduce: 'mean', as: 'conv_mean' },
        ],
        batchSize: 8,
        shardSize: 16,
        sink: { uri: join(tmp.dir, 'out-nan') },
      }),
      { settings: { redisUrl: REDIS_URL, prefix }, threads: 2 },
    );
    expect(summary.status).toBe('committed');
    expect(summary.rows).toBe(n - 5);
    expect(summary.errorRows).toBe(5);
    const folder = await readRunFolder(summary.output.uri);
    expect(duplicates(folder)).toEqual([]);
    const why = 'NaN and Inf inputs give meaningless features';
    expect(folder.errors.sort((a, b) => Number(a.id) - Number(b.id))).toEqual([
      { id: '3', stage: 'input', message: `input value 10 of 784 is NaN; ${why}` },
      { id: '9', stage: 'features', message: 'features contain NaN or Inf' },
      { id: '17', stage: 'input', message: `input value 400 of 784 is NaN; ${why}` },
      { id: '25', stage: 'input', message: `input value 300 of 784 is Infinity; ${why}` },
      { id: '31', stage: 'input', message: `input value 5 of 784 is -Infinity; ${why}` },
    ]);
    expect([...folder.featureIds.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: n }, (_, i) => String(i)).filter((id) => !['3', '9', '17', '25', '31'].includes(id)),
    );
    // what was written is finite
    for (const f of summary.output.files) {
      for (const row of featureRows(await readArrow(f), 'conv_mean')) expect(row.every(Number.isFinite)).toBe(true);
    }
  }, 60_000);

  it('converts grayscale, RGBA and 16-bit images, and rejects a decompression bomb, an escaping symlink, a .. path, a FIFO and a file over maxRowBytes', async () => {
    const root = join(tmp.dir, 'images');
    await mkdir(join(root, 'sub'), { recursive: true });
    await solid(3, 128, 128, 128).png().toFile(join(root, 'a-rgb-gray.png'));
    await solid(3, 128, 128, 128).toColourspace('b-w').png().toFile(join(root, 'b-gray.png'));
    await solid(3, 30, 160, 90).png().toFile(join(root, 'c-rgb.png'));
    await solid(4, 30, 160, 90, 1).png().toFile(join(root, 'd-rgba-opaque.png'));
    await solid(3, 30, 160, 90).toColourspace('rgb16').png().toFile(join(root, 'e-rgb16.png'));
    await writeFile(join(root, 'f-bomb.png'), bombPng(100_000, 100_000));
    await solid(3, 1, 2, 3).png().toFile(join(tmp.dir, 'outside.png'));
    await symlink(join(tmp.dir, 'outside.png'), join(root, 'g-escape.png'));
    await symlink(join(root, 'c-rgb.png'), join(root, 'sub', 'h-alias.png'));
    await solid(3, 9, 9, 9).png().toFile(join(root, 'z-tampered.png'));
    // reading a FIFO would wait for a writer forever; a 300 MiB (sparse) file is over the default 256 MiB
    makeFifo(join(root, 'pipe'));
    await symlink(join(root, 'pipe'), join(root, 'sub', 'i-pipe.png'));
    await writeFile(join(root, 'j-huge.png'), '');
    await truncate(join(root, 'j-huge.png'), 300 * 1024 * 1024);
    expect((await sharp(join(root, 'e-rgb16.png')).metadata()).depth).toBe('ushort');
    expect((await sharp(join(root, 'b-gray.png')).metadata()).channels).toBe(1);
    expect((await sharp(join(root, 'd-rgba-opaque.png')).metadata()).channels).toBe(4);

    const { prefix } = newPrefix();
    const settings = { redisUrl: REDIS_URL, prefix };
    const resolved = await resolveJob(
      parseJob({
        name: 'imgs',
        source: { uri: root },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_1.0' }],
        batchSize: 4,
        // one shard: the tampered entry is in it
        shardSize: 20,
        sink: { uri: join(tmp.dir, 'out-img') },
      }),
    );
    const client = new LayertapClient(settings);
    const worker = new LayertapWorker({ settings, threads: 2, log: () => undefined });
    try {
      const rec = await client.enqueue(resolved);
      // a plan file that names a file outside the dataset (as a tampered store could) is refused too
      const plan = join(rec.outputUri, '_plan', 'ids-00000.arrow');
      const ids = (
        tableFromIPC(await readFile(plan))
          .getChild('id')!
          .toArray() as string[]
      ).map((id) => (id === 'z-tampered.png' ? '../outside.png' : id));
      await writeFile(plan, tableToIPC(tableFromArrays({ id: ids }), 'file'));
      await worker.start();
      const s = await waitForFinal(client, rec.runId, 60_000);
      expect(s.status).toBe('committed');
      expect(s.rows).toBe(6);
      expect(s.errorRows).toBe(5);

      const folder = await readRunFolder(s.output.uri);
      expect(duplicates(folder)).toEqual([]);
      const byId = new Map(folder.errors.map((e) => [e.id, e]));
      expect([...byId.keys()].sort()).toEqual(['../outside.png', 'f-bomb.png', 'g-escape.png', 'j-huge.png', 'sub/i-pipe.png']);
      expect(byId.get('sub/i-pipe.png')).toEqual({
        id: 'sub/i-pipe.png',
        stage: 'read',
        message: `sub/i-pipe.png: ${root}/sub/i-pipe.png is a FIFO (named pipe), not a regular file; only regular files are read`,
      });
      expect(byId.get('j-huge.png')).toEqual({
        id: 'j-huge.png',
        stage: 'read',
        message: `j-huge.png: ${root}/j-huge.png is 314572800 bytes, more than source.maxRowBytes (268435456); raise source.maxRowBytes to read it`,
      });
      expect(byId.get('f-bomb.png')).toMatchObject({ stage: 'decode' });
      expect(byId.get('f-bomb.png')!.message).toMatch(/^image is too large: more than 100000000 pixels \(possible decompression bomb\)/);
      expect(byId.get('g-escape.png')).toMatchObject({ stage: 'read' });
      expect(byId.get('g-escape.png')!.message).toMatch(/^g-escape\.png: symlink resolves to .*outside\.png, which leaves the dataset root/);
      expect(byId.get('../outside.png')).toMatchObject({ stage: 'read', message: `../outside.png: path leaves the dataset root ${root}` });

      // converted, not failed: each odd format embeds exactly like its plain 8-bit RGB twin
      const t = await readArrow(s.output.files[0]!);
      const col = t.getChild('id')!;
      const rows = featureRows(t, 'linear_1_0');
      const feat = new Map(Array.from({ length: t.numRows }, (_, i) => [String(col.get(i)), rows[i]!]));
      expect([...feat.keys()]).toEqual(['a-rgb-gray.png', 'b-gray.png', 'c-rgb.png', 'd-rgba-opaque.png', 'e-rgb16.png', 'sub/h-alias.png']);
      expect(maxAbsDiff(feat.get('b-gray.png')!, feat.get('a-rgb-gray.png')!)).toBeLessThan(1e-6);
      expect(maxAbsDiff(feat.get('d-rgba-opaque.png')!, feat.get('c-rgb.png')!)).toBeLessThan(1e-6);
      expect(maxAbsDiff(feat.get('sub/h-alias.png')!, feat.get('c-rgb.png')!)).toBeLessThan(1e-6);
      // 16 to 8 bits may round one grey level differently; the two colours are ~15 grey levels apart
      const apart = maxAbsDiff(feat.get('a-rgb-gray.png')!, feat.get('c-rgb.png')!);
      expect(apart).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(feat.get('e-rgb16.png')!, feat.get('c-rgb.png')!)).toBeLessThan(apart / 5);
      expect((await readManifest(s.output.uri)).errorRows).toBe(5);
    } finally {
      releaseFifo(join(root, 'pipe'));
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 60_000);

  describe('refused before anything is queued', () => {
    async function keysUnder(prefix: string): Promise<string[]> {
      const r = new Redis(REDIS_URL);
      try {
        return await r.keys(`${prefix}:*`);
      } finally {
        r.disconnect();
      }
    }

    async function enqueueFails(name: string, job: Record<string, unknown>): Promise<string> {
      const { prefix } = newPrefix();
      const file = join(tmp.dir, `${name}.json`);
      await writeFile(file, JSON.stringify({ name, taps: [{ layer: 'linear_class.0', at: 'input' }], sink: { uri: join(tmp.dir, 'out-refused') }, ...job }));
      const r = await runCli(['enqueue', file], { REDIS_URL, LAYERTAP_PREFIX: prefix });
      expect(r.code, r.stderr).toBe(2);
      expect(await keysUnder(prefix)).toEqual([]);
      return r.stderr;
    }

    it('a .npy whose rows have the wrong shape, or that is shorter than its header says', async () => {
      await writeNpy(join(tmp.dir, 'flat.npy'), new Float32Array(4 * 784), [4, 28, 28]);
      await writeNpy(join(tmp.dir, 'short.npy'), new Float32Array(4 * 784), [4, 28, 28, 1]);
      await truncate(join(tmp.dir, 'short.npy'), 1000);
      const [shape, short] = await Promise.all([
        enqueueFails('shape', { source: { uri: join(tmp.dir, 'flat.npy') }, model: { uri: SEED_MODEL } }),
        enqueueFails('short', { source: { uri: join(tmp.dir, 'short.npy') }, model: { uri: SEED_MODEL } }),
      ]);
      expect(shape).toContain('layertap: source.uri: rows have shape [28,28] but the model takes [28,28,1] per row');
      expect(short).toMatch(/layertap: source\.uri: .*short\.npy: truncated \.npy file: shape \(4, 28, 28, 1\) of <f4 needs 12672 bytes, the file has 1000/);
    }, 60_000);

    it('a model.json whose weight paths leave its folder, or whose weight file has the wrong size', async () => {
      await writeNpy(join(tmp.dir, 'ok.npy'), new Float32Array(2 * 784), [2, 28, 28, 1]);
      const json = JSON.parse(await readFile(SEED_MODEL, 'utf8')) as { weightsManifest: Array<{ paths: string[] }> };
      const escaping = join(tmp.dir, 'escaping');
      await mkdir(escaping, { recursive: true });
      await copyFile(join(SEED, 'tfjs', 'group1-shard1of1.bin'), join(tmp.dir, 'group1-shard1of1.bin'));
      json.weightsManifest[0]!.paths = ['../group1-shard1of1.bin'];
      await writeFile(join(escaping, 'model.json'), JSON.stringify(json));
      const short = join(tmp.dir, 'short-weights');
      await mkdir(short, { recursive: true });
      await copyFile(SEED_MODEL, join(short, 'model.json'));
      await copyFile(join(SEED, 'tfjs', 'group1-shard1of1.bin'), join(short, 'group1-shard1of1.bin'));
      await truncate(join(short, 'group1-shard1of1.bin'), 1000);
      const source = { uri: join(tmp.dir, 'ok.npy') };
      const [esc, size] = await Promise.all([
        enqueueFails('escape', { source, model: { uri: join(escaping, 'model.json') } }),
        enqueueFails('size', { source, model: { uri: join(short, 'model.json') } }),
      ]);
      expect(esc).toMatch(
        /layertap: model\.uri: model\.json .*escaping\/model\.json: weight path '\.\.\/group1-shard1of1\.bin' climbs out with '\.\.'; weight files must be inside/,
      );
      expect(size).toMatch(
        /layertap: model\.uri: model\.json .*short-weights\/model\.json: weight files of manifest group 0 \(group1-shard1of1\.bin\) hold 1000 bytes, but the manifest's weights need \d+ bytes; the files are truncated or belong to another model/,
      );
    }, 60_000);
  });
});
