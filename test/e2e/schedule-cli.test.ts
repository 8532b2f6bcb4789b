import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

// `layertap schedule add | list | remove` as a user types them.
describe('layertap schedule', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };

  beforeAll(async () => {
    tmp = await tempDir();
    await copyFile(join(SEED, 'input_nhwc.npy'), join(tmp.dir, 'x.npy'));
    await writeFile(
      join(tmp.dir, 'job.yaml'),
      `name: products\nsource:\n  uri: ${join(tmp.dir, 'x.npy')}\nmodel:\n  uri: ${SEED_MODEL}\ntaps:\n  - layer: linear_1.1\nsink:\n  uri: ${join(tmp.dir, 'out')}\n`,
    );
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('adds, lists and removes a cron schedule', async () => {
    const add = await runCli(['schedule', 'add', join(tmp.dir, 'job.yaml'), '--cron', '0 3 * * *', '--tz', 'Europe/Berlin', '--id', 'nightly-products'], env);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/^schedule nightly-products: cron "0 3 \* \* \*" \(Europe\/Berlin\), next \d{4}-\d\d-\d\dT/);

    const list = await runCli(['schedule', 'list'], env);
    expect(list.code, list.stderr).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^id\s+job\s+when\s+next\s+last run\s+status$/);
    expect(lines[1]).toMatch(/^nightly-products\s+products\s+cron "0 3 \* \* \*" \(Europe\/Berlin\)\s+\S+\s+-\s+-$/);

    const json = JSON.parse((await runCli(['schedule', 'list', '--json'], env)).stdout) as { schedules: Array<{ id: string; every: number | null }> };
    expect(json.schedules.map((s) => s.id)).toEqual(['nightly-products']);

    const rm = await runCli(['schedule', 'remove', 'nightly-products'], env);
    expect(rm.code, rm.stderr).toBe(0);
    const again = await runCli(['schedule', 'remove', 'nightly-products'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("no schedule with id 'nightly-products'");
  });

  it('needs exactly one of --cron and --every, and a valid job', async () => {
    const none = await runCli(['schedule', 'add', join(tmp.dir, 'job.yaml')], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give exactly one of --cron EXPR or --every MS');
    await writeFile(
      join(tmp.dir, 'bad.yaml'),
      `name: products\nsource:\n  uri: ${join(tmp.dir, 'x.npy')}\nmodel:\n  uri: ${SEED_MODEL}\ntaps:\n  - layer: nope\nsink:\n  uri: ./out\n`,
    );
    const bad = await runCli(['schedule', 'add', join(tmp.dir, 'bad.yaml'), '--every', '60000'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("taps[0].layer: unknown layer 'nope'");
  });
});
