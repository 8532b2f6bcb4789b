import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

// The run registry lists runs; Redis is not the only record: it is rebuilt from the manifests.
describe('run registry', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };

  beforeAll(async () => {
    tmp = await tempDir();
    await copyFile(join(SEED, 'input_nhwc.npy'), join(tmp.dir, 'x.npy'));
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('lists runs and restores them from manifests after Redis is wiped', async () => {
    const job = (name: string) =>
      parseJob({ name, source: { uri: join(tmp.dir, 'x.npy') }, model: { uri: SEED_MODEL }, taps: [{ layer: 'linear_1.1' }], shardSize: 2, sink: { uri: join(tmp.dir, 'out') } });
    const a = await runJob(job('alpha'), { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    const b = await runJob(job('beta'), { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });

    const listed = await runCli(['runs', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const runs = (JSON.parse(listed.stdout) as { runs: Array<{ runId: string; name: string; status: string; rows: number; trigger: string; fingerprint: string }> }).runs;
    expect(runs.map((r) => r.runId)).toEqual([b.runId, a.runId]); // newest first
    expect(runs[0]).toMatchObject({ name: 'beta', status: 'committed', rows: 3, trigger: 'manual', fingerprint: b.fingerprint });

    const human = await runCli(['runs', '--name', 'alpha'], env);
    expect(human.stdout).toMatch(/^run\s+name\s+fingerprint\s+status\s+rows\s+errors\s+started\s+seconds\s+trigger/);
    expect(human.stdout).toContain(a.runId);
    expect(human.stdout).not.toContain(b.runId);

    await cleanup(); // Redis wiped
    const empty = await runCli(['runs', '--json'], env);
    expect(JSON.parse(empty.stdout).runs).toEqual([]);

    const rebuilt = await runCli(['runs', '--rebuild', join(tmp.dir, 'out'), '--json'], env);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stderr).toContain('restored 2 run record(s)');
    const back = (JSON.parse(rebuilt.stdout) as { runs: Array<{ runId: string; status: string; rows: number; files: string[] }> }).runs;
    expect(back.map((r) => r.runId)).toEqual([b.runId, a.runId]);
    expect(back[1]).toMatchObject({ status: 'committed', rows: 3 });
    expect(back[1]!.files).toEqual(a.output.files);

    const status = await runCli(['status', a.runId, '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ runId: a.runId, status: 'committed', rows: 3 });
  });
});
