import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { SEED_MODEL, tempDir } from '../helpers/index.js';
import {
  duplicates,
  finishedShard,
  ProcessSet,
  startedShard,
  readManifest,
  readRunFolder,
  sleep,
  waitForFinal,
  writeRows,
  TestRedis,
} from '../integration/reliability-harness.js';
import { LayertapClient } from '../../src/queue/client.js';

// Redis dies (kill -9) twice in the middle of a run, once for longer than the job locks last,
// and comes back from its append-only file. The same worker processes reconnect by themselves
// and the run commits exactly once.
describe('Redis killed and restarted mid-run', () => {
  const N = 3000;
  const OUTAGE_MS = 1500;
  const LOCK_MS = 3000;
  const LONG_OUTAGE_MS = 4500;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let redis: TestRedis;
  const procs = new ProcessSet();
  const prefix = 'lt-redis-restart';

  beforeAll(async () => {
    tmp = await tempDir('layertap-redis-');
    redis = await TestRedis.start(join(tmp.dir, 'redis'));
    await writeRows(join(tmp.dir, 'rows.npy'), N);
    const job = {
      name: 'restarts',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
      batchSize: 1,
      shardSize: 250,
      sink: { uri: join(tmp.dir, 'out') },
    };
    await writeFile(join(tmp.dir, 'job.json'), JSON.stringify(job));
  });
  afterAll(async () => {
    await procs.killAll();
    await redis?.stop();
    await tmp.remove();
  });

  it('commits with the same workers and every id exactly once', async () => {
    const env = { REDIS_URL: redis.url, LAYERTAP_PREFIX: prefix };
    const workers = [0, 1].map((i) =>
      procs.cli(['worker', '--threads', '1', '--concurrency', '1', '--lock-ms', String(LOCK_MS), '--stalled-ms', '1000'], env, `worker#${i}`),
    );
    await Promise.all(workers.map((w) => w.waitFor(/layertap worker: ready/)));
    const pids = workers.map((w) => w.pid);

    const enq = await runCli(['enqueue', join(tmp.dir, 'job.json'), '--json'], env);
    expect(enq.code, enq.stderr).toBe(0);
    const { runId, output } = JSON.parse(enq.stdout) as { runId: string; output: { uri: string } };

    const done = () => workers.flatMap((w) => w.lines).filter((l) => finishedShard(l.text) !== null).length;
    const outages: Array<{ down: number; up: number; doneBefore: number; firstDoneAfter: number | null }> = [];
    // a short outage, then one longer than the lock: the shards active then lose their locks
    // while still running and are taken again after the restart; output stays exactly once
    for (const [after, ms] of [
      [2, OUTAGE_MS],
      [6, LONG_OUTAGE_MS],
    ] as const) {
      const end = Date.now() + 60_000;
      while (done() < after && Date.now() < end) await sleep(20);
      const doneBefore = done();
      const down = Date.now();
      await redis.kill9();
      await sleep(ms);
      await redis.restart();
      outages.push({ down, up: Date.now(), doneBefore, firstDoneAfter: null });
    }

    const client = new LayertapClient({ redisUrl: redis.url, prefix });
    try {
      const final = await waitForFinal(client, runId, 120_000);
      expect(final.status, JSON.stringify(final)).toBe('committed');
      expect(final.rows).toBe(N);
      expect(final.errorRows).toBe(0);
    } finally {
      await client.close();
    }

    // no worker process was restarted: the same two did all the work
    expect(workers.every((w) => w.alive)).toBe(true);
    expect(workers.map((w) => w.pid)).toEqual(pids);
    for (const o of outages) {
      const next = workers
        .flatMap((w) => w.lines)
        .filter((l) => l.t > o.up && finishedShard(l.text) !== null)
        .sort((a, b) => a.t - b.t)[0];
      o.firstDoneAfter = next ? next.t - o.up : null;
    }
    expect(outages.every((o) => o.firstDoneAfter !== null)).toBe(true);

    const folder = await readRunFolder(output.uri);
    expect(folder.listing.filter((f) => f.startsWith('.') || f.endsWith('.tmp'))).toEqual([]);
    expect(folder.listing).toContain('_SUCCESS');
    expect(duplicates(folder)).toEqual([]);
    expect([...folder.featureIds.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: N }, (_, i) => String(i)));
    expect(folder.errorIds.size).toBe(0);
    expect((await readManifest(output.uri)).rows).toBe(N);

    const errorLines = workers.flatMap((w) => w.lines).filter((l) => /ECONNREFUSED|Connection is closed|connect/i.test(l.text)).length;
    // every connection (shards, runs, schedules) fails each reconnect while Redis is away; a
    // worker says so once per 5 s, not once per failure (32 lines here before the schedule
    // worker shared that limit)
    expect(errorLines).toBeLessThanOrEqual(workers.length * outages.length * 2);
    const extraStarts = workers.flatMap((w) => w.lines).filter((l) => startedShard(l.text) !== null).length - 12;
    console.log(
      `[reliability] redis restarts: ${outages.length} (kill -9, down ${OUTAGE_MS} and ${LONG_OUTAGE_MS} ms, lock ${LOCK_MS} ms, AOF appendfsync always), ` +
        `shards done before each: ${outages.map((o) => o.doneBefore).join(', ')}; first shard committed after restart (ms): ` +
        `${outages.map((o) => o.firstDoneAfter).join(', ')}; worker connection-error log lines: ${errorLines}; shards started again: ${extraStarts}; ` +
        `rows committed ${folder.featureIds.size} of ${N}, duplicates ${duplicates(folder).length}; worker processes restarted: 0`,
    );

    const codes = await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    expect(codes.map((c) => c.code)).toEqual([0, 0]);
  }, 200_000);
});
