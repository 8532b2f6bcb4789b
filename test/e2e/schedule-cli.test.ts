import { copyFile, cp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';
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
    expect(lines[0]).toMatch(/^id\s+job\s+when\s+next\s+last run\s+status\s+error$/);
    expect(lines[1]).toMatch(/^nightly-products\s+products\s+cron "0 3 \* \* \*" \(Europe\/Berlin\)\s+\S+\s+-\s+-\s+-$/);

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

  it('shows a tick whose model is gone as a failed run with the reason: schedule list, runs, status', async () => {
    const model = join(tmp.dir, 'gone-model', 'model.json');
    await cp(dirname(SEED_MODEL), dirname(model), { recursive: true });
    await writeFile(
      join(tmp.dir, 'gone.yaml'),
      `name: gone\nsource:\n  uri: ${join(tmp.dir, 'x.npy')}\nmodel:\n  uri: ${model}\ntaps:\n  - layer: linear_1.1\nsink:\n  uri: ${join(tmp.dir, 'out')}\n`,
    );
    const add = await runCli(['schedule', 'add', join(tmp.dir, 'gone.yaml'), '--every', '1000', '--id', 't1'], env);
    expect(add.code, add.stderr).toBe(0);
    await rm(dirname(model), { recursive: true });
    const reason = `model.uri: model file not found: ${model}`;
    const worker = startCli(['worker', '--threads', '1'], env);
    try {
      await worker.waitFor(`schedule t1 tick failed: ${reason} (run `);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
    const runs = JSON.parse((await runCli(['runs', '--name', 'gone', '--json'], env)).stdout) as {
      runs: Array<{ runId: string; status: string; trigger: string; fingerprint: string; error?: string }>;
    };
    expect(runs.runs.length).toBeGreaterThan(0);
    for (const r of runs.runs) expect(r).toMatchObject({ status: 'failed', trigger: 'schedule', fingerprint: 'unresolved', error: reason });
    const newest = runs.runs[0]!.runId;

    const list = await runCli(['schedule', 'list'], env);
    expect(list.code, list.stderr).toBe(0);
    const row = list.stdout.split('\n').find((l) => l.startsWith('t1 '));
    expect(row).toMatch(new RegExp(`^t1\\s+gone\\s+every 1000 ms\\s+\\S+\\s+${newest}\\s+failed\\s+${reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));

    const status = await runCli(['status', newest], env);
    expect(status.stdout).toContain(`run ${newest}: failed`);
    expect(status.stdout).toContain(`  error       ${reason}`);
    expect((await runCli(['schedule', 'remove', 't1'], env)).code).toBe(0);
  });
});
