import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { ProcessSet, readManifest, readRunFolder, sleep, writeRows } from '../integration/reliability-harness.js';

// A shard whose part file can never be committed (a folder sits at its name, as a broken
// storage key would): it fails every attempt; with `onShardFailure: partial` the run keeps
// the other shards, is marked _PARTIAL, and `status` says which shard is missing.
describe('a poison shard through the CLI', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };
  const procs = new ProcessSet();

  beforeAll(async () => {
    tmp = await tempDir('layertap-poison-');
    await writeRows(join(tmp.dir, 'rows.npy'), 64);
  });
  afterAll(async () => {
    await procs.killAll();
    await cleanup();
    await tmp.remove();
  });

  it('ends partial after the configured attempts, naming the failed shard', async () => {
    const job = {
      name: 'poison',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
      batchSize: 8,
      shardSize: 16,
      attempts: 2,
      onShardFailure: 'partial',
      sink: { uri: join(tmp.dir, 'out') },
    };
    await writeFile(join(tmp.dir, 'job.yaml'), JSON.stringify(job));
    const enq = await runCli(['enqueue', join(tmp.dir, 'job.yaml'), '--json'], env);
    expect(enq.code, enq.stderr).toBe(0);
    const { runId, output } = JSON.parse(enq.stdout) as { runId: string; output: { uri: string } };
    await mkdir(join(output.uri, 'part-00001.arrow', 'in-the-way'), { recursive: true });

    const w = procs.cli(['worker', '--threads', '1'], env, 'worker');
    let status: { status: string; failedShards: number[]; rows: number; error?: string; shards: { done: number; failed: number } } | null = null;
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      const st = await runCli(['status', runId, '--json'], env);
      expect(st.code, st.stderr).toBe(0);
      status = JSON.parse(st.stdout);
      if (['committed', 'failed', 'partial'].includes(status!.status)) break;
      await sleep(300);
    }
    expect(status!.status).toBe('partial');
    expect(status!.failedShards).toEqual([1]);
    expect(status!.rows).toBe(48);
    expect(status!.shards).toMatchObject({ done: 3, failed: 1 });
    expect(status!.error).toMatch(/^1 shard\(s\) failed: #1: cannot commit .*part-00001\.arrow: /);
    expect(w.lines.filter((l) => /shard 1 attempt \d\/2 failed: cannot commit/.test(l.text)).map((l) => /attempt (\d\/2)/.exec(l.text)![1])).toEqual([
      '1/2',
      '2/2',
    ]);

    const listing = await readdir(output.uri);
    expect(listing).toContain('_PARTIAL');
    expect(listing).not.toContain('_SUCCESS');
    const manifest = await readManifest(output.uri);
    expect(manifest.status).toBe('partial');
    expect(manifest.failedShards).toEqual([{ index: 1, error: expect.stringMatching(/^cannot commit .*part-00001\.arrow/), start: 16, rows: 16 }]);
    const folder = await readRunFolder(output.uri);
    expect([...folder.featureIds.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 64 }, (_, i) => String(i)).filter((id) => Number(id) < 16 || Number(id) >= 32),
    );
    expect(folder.listing.filter((f) => f.startsWith('.'))).toEqual([]);
    expect((await w.stop('SIGTERM')).code).toBe(0);
  }, 90_000);
});
