import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { featureRows, readArrow, REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

async function png(seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(28 * 28);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * ((seed % 13) + 1) + seed * 17) % 256;
  return sharp(raw, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
}

async function vectors(file: string): Promise<Map<string, Float32Array>> {
  const t = await readArrow(file);
  const ids = t.getChild('id')!;
  const rows = featureRows(t, 'feat');
  return new Map(rows.map((r, i) => [String(ids.get(i)), r]));
}

// An incremental run whose only changed input no longer decodes: its batch has no features, and
// the carried rows before it are still written, with the vectors of the base run.
describe('incremental run with a changed row that fails', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };
  const job = () =>
    parseJob({
      name: 'inc-err',
      source: { uri: join(tmp.dir, 'images') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_1.1', as: 'feat' }],
      batchSize: 4,
      shardSize: 12,
      incremental: true,
      sink: { uri: join(tmp.dir, 'out') },
    });

  beforeAll(async () => {
    tmp = await tempDir();
    await mkdir(join(tmp.dir, 'images'), { recursive: true });
    for (let i = 0; i < 12; i++) await writeFile(join(tmp.dir, 'images', `img-${String(i).padStart(2, '0')}.png`), await png(i));
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('writes the carried rows and one error row', async () => {
    const first = await runJob(job(), { settings, threads: 1 });
    expect(first.status).toBe('committed');
    const v1 = await vectors(first.output.files[0]!);

    await writeFile(join(tmp.dir, 'images', 'img-05.png'), 'not an image');
    const second = await runJob(job(), { settings, threads: 1 });
    expect(second.status).toBe('committed');
    expect(second.rows).toBe(11);
    expect(second.errorRows).toBe(1);
    const m = JSON.parse(await readFile(second.output.manifest!, 'utf8'));
    expect(m.incremental).toEqual({ baseRunId: first.runId, carriedRows: 11, embeddedRows: 0 });
    const v2 = await vectors(second.output.files[0]!);
    expect([...v2.keys()]).toEqual([...v1.keys()].filter((id) => id !== 'img-05.png'));
    for (const [id, v] of v2) expect(v).toEqual(v1.get(id));
  });
});
