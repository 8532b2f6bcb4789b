import { copyFile, mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient } from '../../src/queue/client.js';
import type { RunSummary } from '../../src/queue/types.js';
import { LayertapWorker, type LayertapWorkerOptions } from '../../src/queue/worker.js';
import { REDIS_URL, SEED, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { duplicates, readManifest, readRunFolder, waitForFinal, writeRows, type RunFolder } from './reliability-harness.js';

const FAULTY_THREAD = fileURLToPath(new URL('../fixtures/faulty/faulty-thread.mjs', import.meta.url));

interface Fault {
  id: string;
  action: 'exit' | 'throw' | 'hang' | 'spin';
  times?: number;
}

interface Outcome {
  summary: RunSummary;
  folder: RunFolder;
  /** worker log lines */
  log: string[];
  /** faulty-thread log: "<threadId> <ok|action> <first>..<last>" */
  threads: string[];
  seconds: number;
}

// Pool threads that die, throw, hang or spin on given rows (test/fixtures/faulty). The shard
// whose batch broke is retried, the pool replaces a dead or stopped thread, and the other
// shards never notice. A shard that always fails ends the run as failed (or partial).
describe('faults inside pool threads', () => {
  const N = 120;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const prefixes: Array<ReturnType<typeof testPrefix>> = [];
  let runs = 0;

  beforeAll(async () => {
    tmp = await tempDir('layertap-threads-');
    await writeRows(join(tmp.dir, 'rows.npy'), N);
  });
  afterAll(async () => {
    for (const p of prefixes) await p.cleanup();
    await tmp.remove();
    delete process.env.LAYERTAP_FAULTY_PLAN;
  });

  async function run(faults: Fault[], job: Record<string, unknown> = {}, worker: Partial<LayertapWorkerOptions> = {}): Promise<Outcome> {
    const n = runs++;
    const dir = join(tmp.dir, `run${n}`);
    await mkdir(join(dir, 'markers'), { recursive: true });
    const plan = { log: join(dir, 'threads.log'), markers: join(dir, 'markers'), faults };
    await writeFile(plan.log, '');
    await writeFile(join(dir, 'plan.json'), JSON.stringify(plan));
    // read by the fixture in each pool thread; threads copy the environment when they start
    process.env.LAYERTAP_FAULTY_PLAN = join(dir, 'plan.json');

    const tp = testPrefix();
    prefixes.push(tp);
    const settings = { redisUrl: REDIS_URL, prefix: tp.prefix };
    const resolved = await resolveJob(
      parseJob({
        name: `threads${n}`,
        source: { uri: join(tmp.dir, 'rows.npy') },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
        batchSize: 5,
        shardSize: 20,
        sink: { uri: join(dir, 'out') },
        ...job,
      }),
    );
    const log: string[] = [];
    const w = new LayertapWorker({ settings, threads: 2, concurrency: 2, threadEntry: FAULTY_THREAD, log: (l) => log.push(l), ...worker });
    const client = new LayertapClient(settings);
    const t0 = Date.now();
    try {
      await w.start();
      const rec = await client.enqueue(resolved);
      const summary = await waitForFinal(client, rec.runId, 60_000);
      const seconds = (Date.now() - t0) / 1000;
      const threads = (await readFile(plan.log, 'utf8')).split('\n').filter(Boolean);
      return { summary, folder: await readRunFolder(summary.output.uri), log, threads, seconds };
    } finally {
      await w.close({ graceMs: 0 });
      await client.close();
    }
  }

  const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => String(from + i));
  const sortedIds = (m: Map<string, number>) => [...m.keys()].sort((a, b) => Number(a) - Number(b));
  const failedAttempts = (log: string[]) => log.filter((l) => / attempt \d+\/\d+ failed: /.test(l));

  it('retries only the shard whose thread exited or threw; the dead thread is replaced', async () => {
    const o = await run([
      { id: '47', action: 'exit' },
      { id: '85', action: 'throw' },
    ]);
    expect(o.summary.status).toBe('committed');
    expect(o.summary.rows).toBe(N);
    expect(duplicates(o.folder)).toEqual([]);
    expect(sortedIds(o.folder.featureIds)).toEqual(ids(0, N));

    // one failed attempt each for shards 2 (rows 40..59) and 4 (rows 80..99), none elsewhere
    const failed = failedAttempts(o.log);
    expect(failed).toHaveLength(2);
    expect(failed.find((l) => / shard 2 attempt 1\/3 failed: /.test(l))).toMatch(
      /a pool thread died \(exit code 7\) while running a batch of 5 row\(s\) \(ids 45\.\.49\)/,
    );
    expect(failed.find((l) => / shard 4 attempt 1\/3 failed: /.test(l))).toMatch(/injected fault at row 85/);

    // the thread that exited never ran again; a new one took its place (2 threads + 1 replacement)
    const exitLine = o.threads.find((l) => / exit /.test(l))!;
    const deadThread = exitLine.split(' ')[0];
    expect(o.threads.slice(o.threads.indexOf(exitLine) + 1).some((l) => l.startsWith(`${deadThread} `))).toBe(false);
    const threadIds = new Set(o.threads.map((l) => l.split(' ')[0]));
    expect(threadIds.size).toBe(3);
    // the thread that threw survived and kept working
    const throwLine = o.threads.find((l) => / throw /.test(l))!;
    const thrower = throwLine.split(' ')[0];
    expect(o.threads.slice(o.threads.indexOf(throwLine) + 1).some((l) => l.startsWith(`${thrower} ok`))).toBe(true);
    console.log(
      `[reliability] thread exit + throw: ${failed.length} failed attempts (shards 2 and 4), run committed ${o.summary.rows}/${N} rows in ${o.seconds.toFixed(1)} s, threads used ${threadIds.size}`,
    );
  }, 90_000);

  it('stops a thread that hangs or spins past the batch timeout and retries its shard', async () => {
    const o = await run(
      [
        { id: '47', action: 'hang' },
        { id: '85', action: 'spin' },
      ],
      {},
      { batchTimeoutMs: 2500 },
    );
    expect(o.summary.status).toBe('committed');
    expect(duplicates(o.folder)).toEqual([]);
    expect(sortedIds(o.folder.featureIds)).toEqual(ids(0, N));
    const failed = failedAttempts(o.log);
    expect(failed).toHaveLength(2);
    for (const shard of [2, 4]) {
      expect(failed.find((l) => new RegExp(` shard ${shard} attempt 1/3 failed: `).test(l))).toMatch(/took longer than 2500 ms; its thread was stopped/);
    }
    // both stuck threads were replaced
    expect(new Set(o.threads.map((l) => l.split(' ')[0])).size).toBe(4);
    console.log(`[reliability] thread hang + spin: both stopped at the 2500 ms batch timeout and retried; run committed in ${o.seconds.toFixed(1)} s`);
  }, 90_000);

  it('fails a shard that fails every attempt: the run is failed, its manifest names the shard, no _SUCCESS', async () => {
    const o = await run([{ id: '47', action: 'throw', times: 100 }], { attempts: 2 });
    expect(o.summary.status).toBe('failed');
    expect(o.summary.failedShards).toEqual([2]);
    expect(o.summary.error).toMatch(/1 shard\(s\) failed: #2: injected fault at row 47/);
    // exactly the configured number of attempts
    expect(o.threads.filter((l) => / throw 45\.\.49$/.test(l))).toHaveLength(2);
    expect(failedAttempts(o.log).map((l) => / attempt (\d\/\d) /.exec(l)![1])).toEqual(['1/2', '2/2']);

    expect(o.folder.listing).not.toContain('_SUCCESS');
    expect(o.folder.listing).not.toContain('_PARTIAL');
    expect(o.folder.listing).toContain('_manifest.json');
    expect(o.folder.listing.filter((f) => f.startsWith('part-'))).toEqual([
      'part-00000.arrow',
      'part-00001.arrow',
      'part-00003.arrow',
      'part-00004.arrow',
      'part-00005.arrow',
    ]);
    expect(sortedIds(o.folder.featureIds)).toEqual([...ids(0, 40), ...ids(60, N)]);
    const manifest = await readManifest(o.summary.output.uri);
    expect(manifest.status).toBe('failed');
    expect(manifest.failedShards).toEqual([{ index: 2, error: 'injected fault at row 47', start: 40, rows: 20 }]);
  }, 90_000);

  it('marks the run partial, with _PARTIAL and no _SUCCESS, when the job says onShardFailure: partial', async () => {
    const o = await run([{ id: '47', action: 'throw', times: 100 }], { attempts: 2, onShardFailure: 'partial' });
    expect(o.summary.status).toBe('partial');
    expect(o.summary.rows).toBe(N - 20);
    expect(o.folder.listing).toContain('_PARTIAL');
    expect(o.folder.listing).not.toContain('_SUCCESS');
    const manifest = await readManifest(o.summary.output.uri);
    expect(manifest.status).toBe('partial');
    expect(manifest.failedShards.map((f) => [f.index, f.start, f.rows])).toEqual([[2, 40, 20]]);
    expect(sortedIds(o.folder.featureIds)).toEqual([...ids(0, 40), ...ids(60, N)]);
  }, 90_000);

  it('fails the shards of a model that cannot load, at the first attempt, with the reason', async () => {
    // a model that was fine when the job was enqueued, and whose weights were damaged afterwards
    const modelDir = join(tmp.dir, 'broken-model');
    await mkdir(modelDir, { recursive: true });
    await copyFile(SEED_MODEL, join(modelDir, 'model.json'));
    await copyFile(join(SEED, 'tfjs', 'group1-shard1of1.bin'), join(modelDir, 'group1-shard1of1.bin'));
    const tp = testPrefix();
    prefixes.push(tp);
    const settings = { redisUrl: REDIS_URL, prefix: tp.prefix };
    const resolved = await resolveJob(
      parseJob({
        name: 'broken',
        source: { uri: join(tmp.dir, 'rows.npy') },
        model: { uri: join(modelDir, 'model.json') },
        taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
        batchSize: 5,
        shardSize: 40,
        sink: { uri: join(tmp.dir, 'broken-out') },
      }),
    );
    await truncate(join(modelDir, 'group1-shard1of1.bin'), 100);
    const log: string[] = [];
    const w = new LayertapWorker({ settings, threads: 2, concurrency: 2, log: (l) => log.push(l) });
    const client = new LayertapClient(settings);
    const t0 = Date.now();
    try {
      await w.start();
      const rec = await client.enqueue(resolved);
      const s = await waitForFinal(client, rec.runId, 30_000);
      const seconds = (Date.now() - t0) / 1000;
      expect(s.status).toBe('failed');
      expect(s.failedShards).toEqual([0, 1, 2]);
      const manifest = await readManifest(s.output.uri);
      for (const f of manifest.failedShards) {
        expect(f.error).toMatch(
          /^model load failed: .*model\.json: weight files of manifest group 0 .* hold 100 bytes, but the manifest's weights need \d+ bytes; the files are truncated or belong to another model/,
        );
      }
      // not retried: loading will not work the second time either
      expect(log.filter((l) => / attempt 1\/3 failed: model load failed/.test(l))).toHaveLength(3);
      expect(log.some((l) => / attempt 2\/3 /.test(l))).toBe(false);
      console.log(`[reliability] model that cannot load: 3 shards failed at attempt 1/3, run failed in ${seconds.toFixed(1)} s`);
    } finally {
      await w.close({ graceMs: 0 });
      await client.close();
    }
  }, 60_000);
});
