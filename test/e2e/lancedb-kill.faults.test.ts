import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LanceTables } from '@layertap/lancedb-io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { finishedShard, ProcessSet, readRunFolder, sleep, startedShard, waitForFinal, writeRows, type CliProc } from '../integration/reliability-harness.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { LayertapClient } from '../../src/queue/client.js';

// Worker processes writing to a LanceDB table die by SIGKILL inside shards: the table ends with
// every row exactly once (a killed shard's rows are staged again under the same name, and the
// table takes the run's rows once, when it commits).
describe('a lancedb job whose workers are killed mid-run', () => {
  const N = 3000;
  const NAN_ROWS = [7, 1800];
  const LOCK_MS = 2000;
  const STALLED_MS = 500;
  const KILLS = 2;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };
  const procs = new ProcessSet();
  const workerArgs = ['worker', '--threads', '1', '--concurrency', '1', '--lock-ms', String(LOCK_MS), '--stalled-ms', String(STALLED_MS)];

  beforeAll(async () => {
    tmp = await tempDir('layertap-lancedb-kill-');
    await writeRows(join(tmp.dir, 'rows.npy'), N, NAN_ROWS);
    const job = {
      name: 'kills',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
      batchSize: 1,
      shardSize: 250,
      sink: { uri: join(tmp.dir, 'db'), format: 'lancedb', table: 'rows' },
    };
    await writeFile(join(tmp.dir, 'job.json'), JSON.stringify(job));
  });
  afterAll(async () => {
    await procs.killAll();
    await cleanup();
    await tmp.remove();
  });

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

  it('commits a table of exactly the rows of the source, each once, that LanceDB search finds', async () => {
    const startWorker = () => procs.cli(workerArgs, env, `worker#${procs.all.length}`);
    const live: CliProc[] = [startWorker(), startWorker()];
    await Promise.all(live.map((w) => w.waitFor(/layertap worker: ready/)));

    const enq = await runCli(['enqueue', join(tmp.dir, 'job.json'), '--json'], env);
    expect(enq.code, enq.stderr).toBe(0);
    const { runId, output } = JSON.parse(enq.stdout) as { runId: string; output: { uri: string } };

    const client = new LayertapClient({ redisUrl: REDIS_URL, prefix });
    let kills = 0;
    try {
      let lastKill = 0;
      while (kills < KILLS) {
        const status = await client.status(runId);
        if (status && status.status !== 'queued' && status.status !== 'running') break;
        const since = Math.max(lastKill + 600, Date.now() - 50);
        const victim = live.find((w) => w.alive && w.lines.some((l) => l.t >= since && startedShard(l.text) !== null));
        if (!victim) {
          await sleep(20);
          continue;
        }
        await sleep(50 + Math.floor(Math.random() * 150));
        if (openShards(victim).length === 0) continue;
        victim.proc.kill('SIGKILL');
        await victim.exited;
        kills++;
        lastKill = Date.now();
        live.splice(live.indexOf(victim), 1);
        live.push(startWorker());
      }
      const final = await waitForFinal(client, runId, 150_000);
      expect(final.status, JSON.stringify(final)).toBe('committed');
      expect(final.rows).toBe(N - NAN_ROWS.length);
    } finally {
      await client.close();
    }
    expect(kills).toBe(KILLS);

    const want = Array.from({ length: N }, (_, i) => String(i)).filter((id) => !NAN_ROWS.includes(Number(id)));
    const db = await LanceTables.connect(join(tmp.dir, 'db'));
    try {
      expect(await db.countRows('rows')).toBe(N - NAN_ROWS.length);
      const ids = await db.ids('rows');
      expect(ids.length).toBe(new Set(ids).size);
      expect([...ids].sort((a, b) => Number(a) - Number(b))).toEqual(want);
      // the table's vectors are the staged parts': a sample of rows finds itself first
      const folder = await readRunFolder(output.uri);
      const part = await readPartFile(
        join(
          output.uri,
          folder.listing.find((f) => f.startsWith('part-'))!,
        ),
      );
      for (let i = 0; i < part.numRows; i += 25) {
        const id = String(part.getChild('id')!.get(i));
        // by l2: this dataset's hidden features of many rows point the same way (cosine 0 apart)
        const hits = await db.search('rows', 'hidden', [...(part.getChild('hidden')!.get(i) as Iterable<number>)], 2, 'l2');
        expect(hits[0]!.id, id).toBe(id);
        expect(hits[0]!.distance).toBeLessThan(1e-9);
      }
    } finally {
      db.close();
    }
    await Promise.all(live.map((w) => w.waitFor(/layertap worker: ready/)));
    await Promise.all(live.map((w) => w.stop('SIGTERM')));
  }, 200_000);
});
