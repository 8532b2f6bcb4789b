import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/sources/npy.js';
import { runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { readArrow, REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

// `enqueue` plus two separate `layertap worker` processes on one run: the queue spreads the
// shards, and every id lands in exactly one committed part file.
describe('two worker processes on one run', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };
  const workers: CliProcess[] = [];
  const N = 240;

  beforeAll(async () => {
    tmp = await tempDir();
    const data = new Float32Array(N * 28 * 28);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.5 + 0.5;
    await writeNpy(join(tmp.dir, 'rows.npy'), data, [N, 28, 28, 1]);
    const job = {
      name: 'two-workers',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
      batchSize: 8,
      shardSize: 16,
      sink: { uri: join(tmp.dir, 'out') },
    };
    await writeFile(join(tmp.dir, 'job.json'), JSON.stringify(job));
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await cleanup();
    await tmp.remove();
  });

  it('commits the run with every id exactly once', async () => {
    for (let i = 0; i < 2; i++) workers.push(startCli(['worker', '--threads', '1', '--concurrency', '1'], env));
    await Promise.all(workers.map((w) => w.waitFor('layertap worker: ready')));

    const enq = await runCli(['enqueue', join(tmp.dir, 'job.json'), '--json'], env);
    expect(enq.code, enq.stderr).toBe(0);
    const { runId, shards } = JSON.parse(enq.stdout) as { runId: string; shards: number };
    expect(shards).toBe(15);

    let status: { status: string; rows: number; shards: { done: number }; output: { files: string[]; manifest: string } } | null = null;
    const end = Date.now() + 90_000;
    while (Date.now() < end) {
      const st = await runCli(['status', runId, '--json'], env);
      expect(st.code, st.stderr).toBe(0);
      status = JSON.parse(st.stdout);
      if (status!.status === 'committed' || status!.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(status!.status).toBe('committed');
    expect(status!.rows).toBe(N);
    expect(status!.output.files).toHaveLength(15);

    const seen = new Map<string, number>();
    for (const f of status!.output.files) {
      const t = await readArrow(f);
      const ids = t.getChild('id')!;
      for (let i = 0; i < t.numRows; i++) seen.set(String(ids.get(i)), (seen.get(String(ids.get(i))) ?? 0) + 1);
    }
    expect(seen.size).toBe(N);
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
    expect([...seen.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: N }, (_, i) => String(i)));

    // both processes took part
    for (const w of workers) expect(w.stderr()).toMatch(/shard \d+: \d+ rows/);

    // SIGTERM drains and exits 0
    const codes = await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    expect(codes).toEqual([0, 0]);
  });
});
