import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/sources/npy.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

// A bad job file fails before any work: exit code 2, the field named, nothing written or queued.
describe('bad job files', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };

  beforeAll(async () => {
    tmp = await tempDir();
    await writeNpy(join(tmp.dir, 'rows.npy'), new Float32Array(2 * 28 * 28), [2, 28, 28, 1]);
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  const base = () => ({
    name: 'bad',
    source: { uri: join(tmp.dir, 'rows.npy') },
    model: { uri: SEED_MODEL },
    taps: [{ layer: 'linear_1.1' }] as Array<Record<string, unknown>>,
    sink: { uri: join(tmp.dir, 'out') },
  });

  async function expectRejected(job: unknown, ...needles: string[]) {
    const file = join(tmp.dir, `job-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, JSON.stringify(job));
    const r = await runCli(['run', file], env);
    expect(r.code, r.stderr).toBe(2);
    for (const n of needles) expect(r.stderr).toContain(n);
    expect(existsSync(join(tmp.dir, 'out'))).toBe(false);
  }

  it('names an unknown layer and lists the valid ones', async () => {
    const job = base();
    job.taps = [{ layer: 'linear_9' }];
    await expectRejected(job, "taps[0].layer: unknown layer 'linear_9'", 'layers are: input, conv_16.0, conv_16.1');
  });

  it('names a missing source', async () => {
    const job = { ...base(), source: { uri: join(tmp.dir, 'nowhere.npy') } };
    await expectRejected(job, 'source.uri:', 'nowhere.npy');
  });

  it('names a bad field', async () => {
    await expectRejected({ ...base(), batchSize: 'many' }, 'batchSize');
    await expectRejected(
      { ...base(), taps: [{ layer: 'linear_1.1', reduce: 'median' }] },
      'taps[0].reduce: invalid value; choose one of "none", "mean", "max"',
    );
  });

  it('rejects rows that do not fit the model', async () => {
    await writeNpy(join(tmp.dir, 'wrong.npy'), new Float32Array(2 * 10), [2, 10]);
    await expectRejected({ ...base(), source: { uri: join(tmp.dir, 'wrong.npy') } }, 'source.uri: rows have shape [10] but the model takes [28,28,1] per row');
  });

  it('exits 2 on a bad command-line argument, naming it', async () => {
    const r = await runCli(['run', 'job.yaml', '--workers', '0'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--workers must be a positive integer');
    const missing = await runCli(['layers'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'model-uri'");
  });

  it('queues nothing for a rejected job', async () => {
    const r = await runCli(['status', 'nope', '--json'], env);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toContain("no run with id 'nope'");
  });
});
