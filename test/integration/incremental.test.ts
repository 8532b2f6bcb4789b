import { readFile, rm, writeFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { featureRows, readArrow, REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

async function png(seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(28 * 28);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * ((seed % 17) + 1) + seed * 31) % 256;
  return sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toBuffer();
}

async function readRun(files: string[], col: string): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const f of files) {
    const t = await readArrow(f);
    const ids = t.getChild('id')!;
    const rows = featureRows(t, col);
    for (let i = 0; i < t.numRows; i++) out.set(String(ids.get(i)), rows[i]!);
  }
  return out;
}

// Incremental re-embedding: only rows whose content changed are computed; the run is still a
// complete snapshot; deleted rows disappear; a new fingerprint re-embeds everything.
describe('incremental runs', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };
  const job = (over: Record<string, unknown> = {}) =>
    parseJob({
      name: 'inc',
      source: { uri: join(tmp.dir, 'images') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_1.1', as: 'feat' }],
      batchSize: 8,
      shardSize: 30,
      incremental: true,
      sink: { uri: join(tmp.dir, 'out') },
      ...over,
    });

  beforeAll(async () => {
    tmp = await tempDir();
    await mkdir(join(tmp.dir, 'images'), { recursive: true });
    for (let i = 0; i < 100; i++) await writeFile(join(tmp.dir, 'images', `img-${String(i).padStart(3, '0')}.png`), await png(i));
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('embeds only changed rows, carries the rest, and drops deleted ones', async () => {
    const first = await runJob(job(), { settings, threads: 1 });
    expect(first.status).toBe('committed');
    expect(first.rows).toBe(100);
    const m1 = JSON.parse(await readFile(first.output.manifest!, 'utf8'));
    expect(m1.incremental).toEqual({ baseRunId: null, carriedRows: 0, embeddedRows: 100 });
    const v1 = await readRun(first.output.files, 'feat');

    // change 3 files, then run again
    const changed = ['img-007.png', 'img-042.png', 'img-099.png'];
    for (const [k, name] of changed.entries()) await writeFile(join(tmp.dir, 'images', name), await png(1000 + k));
    const second = await runJob(job(), { settings, threads: 1 });
    expect(second.status).toBe('committed');
    expect(second.fingerprint).toBe(first.fingerprint);
    const m2 = JSON.parse(await readFile(second.output.manifest!, 'utf8'));
    expect(m2.incremental).toEqual({ baseRunId: first.runId, carriedRows: 97, embeddedRows: 3 });
    expect(m2.rows).toBe(100);
    const v2 = await readRun(second.output.files, 'feat');
    expect(v2.size).toBe(100);
    const ids = [...v2.keys()];
    expect(ids).toEqual([...ids].sort()); // source order kept across carried and computed rows
    for (const [id, v] of v2) {
      if (changed.includes(id)) expect(v).not.toEqual(v1.get(id));
      else expect(v).toEqual(v1.get(id)); // carried bit for bit
    }

    // the 3 new vectors are what a full (non-incremental) run computes
    const full = await runJob(job({ incremental: false }), { settings, threads: 1 });
    const vf = await readRun(full.output.files, 'feat');
    for (const id of changed) {
      const a = v2.get(id)!;
      const b = vf.get(id)!;
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-6);
    }

    // delete a file: its row is gone from the next snapshot, nothing is recomputed
    await rm(join(tmp.dir, 'images', 'img-050.png'));
    const third = await runJob(job(), { settings, threads: 1 });
    const m3 = JSON.parse(await readFile(third.output.manifest!, 'utf8'));
    expect(m3.rows).toBe(99);
    expect(m3.incremental.embeddedRows).toBe(0);
    expect(m3.incremental.carriedRows).toBe(99);
    const v3 = await readRun(third.output.files, 'feat');
    expect(v3.has('img-050.png')).toBe(false);
    expect(v3.size).toBe(99);
  });

  it('re-embeds everything into a new fingerprint folder when a tap changes', async () => {
    const before = await runJob(job(), { settings, threads: 1 });
    const after = await runJob(job({ taps: [{ layer: 'linear_1.1', as: 'feat', normalize: 'l2' }] }), { settings, threads: 1 });
    expect(after.fingerprint).not.toBe(before.fingerprint);
    expect(after.output.uri).toContain(`/inc/${after.fingerprint}/`);
    const m = JSON.parse(await readFile(after.output.manifest!, 'utf8'));
    expect(m.incremental).toEqual({ baseRunId: null, carriedRows: 0, embeddedRows: before.rows });
  });

  it('writes the carried rows of a shard whose only changed row no longer decodes', async () => {
    // the changed row's batch has no features: the carried rows before it are written all the same
    const dir = join(tmp.dir, 'images-err');
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < 12; i++) await writeFile(join(dir, `img-${String(i).padStart(2, '0')}.png`), await png(i));
    const small = () => job({ name: 'inc-err', source: { uri: dir }, batchSize: 4, shardSize: 12 });
    const first = await runJob(small(), { settings, threads: 1 });
    expect(first.status).toBe('committed');
    const v1 = await readRun(first.output.files, 'feat');

    await writeFile(join(dir, 'img-05.png'), 'not an image');
    const second = await runJob(small(), { settings, threads: 1 });
    expect(second.status).toBe('committed');
    expect(second.rows).toBe(11);
    expect(second.errorRows).toBe(1);
    const m = JSON.parse(await readFile(second.output.manifest!, 'utf8'));
    expect(m.incremental).toEqual({ baseRunId: first.runId, carriedRows: 11, embeddedRows: 0 });
    const v2 = await readRun(second.output.files, 'feat');
    expect([...v2.keys()]).toEqual([...v1.keys()].filter((id) => id !== 'img-05.png'));
    for (const [id, v] of v2) expect(v).toEqual(v1.get(id));
  });
});
