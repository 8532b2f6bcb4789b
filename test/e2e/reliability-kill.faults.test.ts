import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import {
  duplicates,
  finishedShard,
  ProcessSet,
  readManifest,
  readRunFolder,
  sleep,
  startedShard,
  waitForFinal,
  writeRows,
  type CliProc,
} from '../integration/reliability-harness.js';
import { LayertapClient } from '../../src/queue/client.js';

// Worker processes die by SIGKILL in the middle of shards, several times, and new ones are
// started: the run still commits, and every id is in exactly one part or error file.
describe('worker processes killed mid-run', () => {
  const N = 6000;
  const NAN_ROWS = [123, 2500, 4999];
  const LOCK_MS = 2000;
  const STALLED_MS = 500;
  const KILLS = 4;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };
  const procs = new ProcessSet();
  const workerArgs = ['worker', '--threads', '1', '--concurrency', '1', '--lock-ms', String(LOCK_MS), '--stalled-ms', String(STALLED_MS)];

  beforeAll(async () => {
    tmp = await tempDir('layertap-kill-');
    await writeRows(join(tmp.dir, 'rows.npy'), N, NAN_ROWS);
    const job = {
      name: 'kills',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      // the pre-activation conv output carries a NaN input through (ReLU and pooling would hide it)
      taps: [
        { layer: 'linear_class.0', at: 'input', as: 'hidden' },
        { layer: 'conv_16.0', reduce: 'mean', as: 'conv_mean' },
      ],
      // one row per forward pass keeps shards long enough for kills to land inside them
      batchSize: 1,
      shardSize: 250,
      sink: { uri: join(tmp.dir, 'out') },
    };
    await writeFile(join(tmp.dir, 'job.json'), JSON.stringify(job));
  });
  afterAll(async () => {
    await procs.killAll();
    await cleanup();
    await tmp.remove();
  });

  /** Shards a worker has started and not finished, by its own log. */
  function openShards(w: CliProc): number[] {
    const open = new Map<number, number>();
    for (const l of w.lines) {
      const s = startedShard(l.text);
      if (s !== null) open.set(s, (open.get(s) ?? 0) + 1);
      const f = finishedShard(l.text);
      if (f !== null) open.set(f, (open.get(f) ?? 0) - 1);
    }
    return [...open].filter(([, n]) => n > 0).map(([s]) => s);
  }

  it('commits with every id exactly once, and the shards of a killed worker are picked up again', async () => {
    const startWorker = () => procs.cli(workerArgs, env, `worker#${procs.all.length}`);
    const live: CliProc[] = [startWorker(), startWorker(), startWorker()];
    await Promise.all(live.map((w) => w.waitFor(/layertap worker: ready/)));

    const enq = await runCli(['enqueue', join(tmp.dir, 'job.json'), '--json'], env);
    expect(enq.code, enq.stderr).toBe(0);
    const { runId, shards, output } = JSON.parse(enq.stdout) as { runId: string; shards: number; output: { uri: string } };
    expect(shards).toBe(24);

    const client = new LayertapClient({ redisUrl: REDIS_URL, prefix });
    const kills: Array<{ t: number; pid: number; shards: number[] }> = [];
    try {
      // kill a worker shortly after it starts a shard, so the kill lands inside the shard
      let lastKill = 0;
      while (kills.length < KILLS) {
        const status = await client.status(runId);
        if (status && status.status !== 'queued' && status.status !== 'running') break;
        const since = Math.max(lastKill + 600, Date.now() - 50);
        const victim = live.find((w) => w.alive && w.lines.some((l) => l.t >= since && startedShard(l.text) !== null));
        if (!victim) {
          await sleep(20);
          continue;
        }
        await sleep(50 + Math.floor(Math.random() * 150));
        const open = openShards(victim);
        if (open.length === 0) continue;
        const t = Date.now();
        victim.proc.kill('SIGKILL');
        await victim.exited;
        kills.push({ t, pid: victim.pid, shards: open });
        lastKill = t;
        live.splice(live.indexOf(victim), 1);
        // its replacement joins when it is ready; the next victim can be any worker that starts a shard
        live.push(startWorker());
      }

      const final = await waitForFinal(client, runId, 150_000);
      expect(final.status, JSON.stringify(final)).toBe('committed');
      expect(final.rows).toBe(N - NAN_ROWS.length);
      expect(final.errorRows).toBe(NAN_ROWS.length);
    } finally {
      await client.close();
    }

    // the kills landed mid-shard, and each of those shards was started again by another process
    expect(kills.length).toBe(KILLS);
    const recoveries: number[] = [];
    for (const k of kills) {
      for (const s of k.shards) {
        const again = procs.all
          .filter((p) => p.pid !== k.pid)
          .flatMap((p) => p.lines)
          .filter((l) => l.t > k.t && startedShard(l.text) === s)
          .sort((a, b) => a.t - b.t)[0];
        expect(again, `shard ${s} killed at ${k.t} was never started again`).toBeDefined();
        recoveries.push(again!.t - k.t);
      }
    }
    // the lock expires at most LOCK_MS after the last renewal, the next check finds it within STALLED_MS
    // (twice: a job is marked at one check and moved at the next); the rest is slack for a busy machine
    for (const r of recoveries) expect(r).toBeLessThan(LOCK_MS + 2 * STALLED_MS + 4000);

    const folder = await readRunFolder(output.uri);
    expect(folder.listing.filter((f) => f.startsWith('.') || f.endsWith('.tmp'))).toEqual([]);
    expect(folder.listing).toContain('_SUCCESS');
    expect(folder.listing.filter((f) => f.startsWith('part-'))).toHaveLength(24);
    expect(duplicates(folder)).toEqual([]);
    const want = Array.from({ length: N }, (_, i) => String(i)).filter((id) => !NAN_ROWS.includes(Number(id)));
    expect([...folder.featureIds.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(want);
    expect([...folder.errorIds.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(NAN_ROWS.map(String));
    expect(folder.errors.map((e) => e.stage)).toEqual(['input', 'input', 'input']);
    expect(folder.errors.every((e) => /^input value 100 of 784 is NaN; NaN and Inf inputs give meaningless features$/.test(e.message))).toBe(true);
    const manifest = await readManifest(output.uri);
    expect(manifest.status).toBe('committed');
    expect(manifest.rows + manifest.errorRows).toBe(N);

    const stalled = procs.all.flatMap((p) => p.lines).filter((l) => /stalled \(its worker stopped renewing the lock\)/.test(l.text)).length;
    const restarts = procs.all.flatMap((p) => p.lines).filter((l) => startedShard(l.text) !== null).length - shards;
    console.log(
      `[reliability] kills: ${kills.length} (shards interrupted: ${kills.map((k) => k.shards.join('+')).join(', ')}); ` +
        `rows in ${N}, committed ${folder.featureIds.size} + ${folder.errorIds.size} error rows, duplicates ${duplicates(folder).length}; ` +
        `stall recoveries ${stalled}, extra shard starts ${restarts}; ` +
        `kill-to-restart ms: ${recoveries.join(', ')} (lock ${LOCK_MS} ms, stalled check ${STALLED_MS} ms)`,
    );

    await Promise.all(live.map((w) => w.waitFor(/layertap worker: ready/)));
    const codes = await Promise.all(live.map((w) => w.stop('SIGTERM')));
    expect(codes.map((c) => c.code)).toEqual(live.map(() => 0));
  }, 200_000);
});
