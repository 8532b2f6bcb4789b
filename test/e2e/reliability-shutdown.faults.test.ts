import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { duplicates, finishedShard, ProcessSet, readRunFolder, startedShard, waitForFinal, writeRows } from '../integration/reliability-harness.js';
import { LayertapClient } from '../../src/queue/client.js';

// SIGTERM to a worker: within the grace period it finishes its active shards and exits 0;
// past it, it hands them back to the queue, where another worker takes them at once rather
// than after the lock expires.
describe('graceful shutdown of a worker', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const procs = new ProcessSet();
  const prefixes: Array<ReturnType<typeof testPrefix>> = [];

  beforeAll(async () => {
    tmp = await tempDir('layertap-shutdown-');
    await writeRows(join(tmp.dir, 'rows.npy'), 3000);
  });
  afterAll(async () => {
    await procs.killAll();
    for (const p of prefixes) await p.cleanup();
    await tmp.remove();
  });

  async function enqueue(name: string, shardSize: number, env: NodeJS.ProcessEnv): Promise<{ runId: string; shards: number; output: { uri: string } }> {
    const job = {
      name,
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
      batchSize: 1,
      shardSize,
      sink: { uri: join(tmp.dir, 'out') },
    };
    const file = join(tmp.dir, `${name}.json`);
    await writeFile(file, JSON.stringify(job));
    const enq = await runCli(['enqueue', file, '--json'], env);
    expect(enq.code, enq.stderr).toBe(0);
    return JSON.parse(enq.stdout);
  }

  async function expectExactlyOnce(dir: string): Promise<void> {
    const folder = await readRunFolder(dir);
    expect(folder.listing.filter((f) => f.startsWith('.') || f.endsWith('.tmp'))).toEqual([]);
    expect(folder.listing).toContain('_SUCCESS');
    expect(duplicates(folder)).toEqual([]);
    expect([...folder.featureIds.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 3000 }, (_, i) => String(i)));
  }

  it('finishes the active shard within the grace period, takes no new one, and exits 0', async () => {
    const tp = testPrefix();
    prefixes.push(tp);
    const env = { REDIS_URL, LAYERTAP_PREFIX: tp.prefix };
    const a = procs.cli(['worker', '--threads', '1', '--concurrency', '1', '--grace-ms', '30000'], env, 'worker-a');
    await a.waitFor(/layertap worker: ready/);
    const { runId, output } = await enqueue('grace', 1000, env);
    const started = await a.waitFor(/shard 0: started/);

    const term = Date.now();
    a.proc.kill('SIGTERM');
    const exit = await a.exited;
    expect(exit.code).toBe(0);
    const finished = a.lines.find((l) => finishedShard(l.text) === 0);
    expect(finished, a.text()).toBeDefined();
    expect(finished!.t).toBeGreaterThan(term);
    // nothing new was taken after the signal
    expect(a.lines.filter((l) => l.t > term && startedShard(l.text) !== null)).toEqual([]);
    expect(a.text()).not.toMatch(/handed back/);

    const b = procs.cli(['worker', '--threads', '1', '--concurrency', '1'], env, 'worker-b');
    await b.waitFor(/layertap worker: ready/);
    const client = new LayertapClient({ redisUrl: REDIS_URL, prefix: tp.prefix });
    try {
      expect((await waitForFinal(client, runId, 60_000)).status).toBe('committed');
    } finally {
      await client.close();
    }
    // shard 0 ran once, in A; B did the other two
    expect(
      b.lines
        .map((l) => startedShard(l.text))
        .filter((s) => s !== null)
        .sort(),
    ).toEqual([1, 2]);
    await expectExactlyOnce(output.uri);
    console.log(
      `[reliability] SIGTERM within grace: shard 0 finished ${finished!.t - term} ms after the signal (started ${term - started.t} ms before it); exit code ${exit.code}`,
    );
    expect((await b.stop('SIGTERM')).code).toBe(0);
  }, 90_000);

  it('hands active shards back when the grace period ends, and another worker takes them without waiting for the lock', async () => {
    const tp = testPrefix();
    prefixes.push(tp);
    const env = { REDIS_URL, LAYERTAP_PREFIX: tp.prefix };
    const LOCK_MS = 15_000;
    const GRACE_MS = 300;
    const a = procs.cli(['worker', '--threads', '1', '--concurrency', '2', '--lock-ms', String(LOCK_MS), '--grace-ms', String(GRACE_MS)], env, 'worker-a');
    await a.waitFor(/layertap worker: ready/);
    const { runId, output } = await enqueue('handback', 1500, env);
    await a.waitFor(/shard 0: started/);
    await a.waitFor(/shard 1: started/);
    const b = procs.cli(['worker', '--threads', '1', '--concurrency', '2', '--lock-ms', String(LOCK_MS)], env, 'worker-b');
    await b.waitFor(/layertap worker: ready/);

    const term = Date.now();
    a.proc.kill('SIGTERM');
    const exit = await a.exited;
    const exitMs = Date.now() - term;
    expect(exit.code, a.text()).toBe(0);
    expect(a.lines.filter((l) => /handed back to the queue/.test(l.text))).toHaveLength(2);
    expect(a.lines.some((l) => finishedShard(l.text) !== null)).toBe(false);

    const client = new LayertapClient({ redisUrl: REDIS_URL, prefix: tp.prefix });
    try {
      expect((await waitForFinal(client, runId, 60_000)).status).toBe('committed');
    } finally {
      await client.close();
    }
    // per shard: from A saying it handed the shard back to B starting it (stderr lines, so +-few ms)
    const pickups = [0, 1].map((s) => {
      const back = a.lines.find((l) => new RegExp(`shard ${s}: handed back`).test(l.text))!.t;
      return b.lines.find((l) => startedShard(l.text) === s)!.t - back;
    });
    // far below the lock duration: B did not wait for A's locks to expire
    for (const p of pickups) expect(p).toBeLessThan(LOCK_MS / 3);
    expect(b.text()).not.toMatch(/stalled/);
    await expectExactlyOnce(output.uri);
    console.log(
      `[reliability] SIGTERM past grace (${GRACE_MS} ms): worker exited ${exit.code} after ${exitMs} ms, 2 shards handed back, picked up by another worker after ${pickups.join(', ')} ms (lock ${LOCK_MS} ms)`,
    );
    expect((await b.stop('SIGTERM')).code).toBe(0);
  }, 90_000);
});
