import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { startDashboard } from '../../src/ops/dashboard/index.js';
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
      parseJob({
        name,
        source: { uri: join(tmp.dir, 'x.npy') },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_1.1' }],
        shardSize: 2,
        sink: { uri: join(tmp.dir, 'out') },
      });
    const a = await runJob(job('alpha'), { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    const b = await runJob(job('beta'), { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });

    const listed = await runCli(['runs', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const runs = (
      JSON.parse(listed.stdout) as { runs: Array<{ runId: string; name: string; status: string; rows: number; trigger: string; fingerprint: string }> }
    ).runs;
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

  it('skips a hostile manifest or record with a warning; the runs page still renders, all text', async () => {
    const { prefix: p2, cleanup: clean2 } = testPrefix();
    const env2 = { REDIS_URL, LAYERTAP_PREFIX: p2 };
    const sink = join(tmp.dir, 'hostile');
    const XSS = '<script>alert(1)</script>';
    const put = async (key: string, text: string) => {
      await mkdir(join(sink, key, '..'), { recursive: true });
      await writeFile(join(sink, key), text);
    };
    // as the finalizer writes it (the fields the registry takes, and some it does not)
    const manifest = (runId: string, name: string) => ({
      layertap: '0.1.0',
      runId,
      name,
      status: 'committed',
      fingerprint: '0123456789abcdef',
      createdAt: '2026-11-27T06:15:02.000Z',
      finishedAt: '2026-11-27T06:15:06.500Z',
      seconds: 4.5,
      source: { uri: '/data/x.npy', type: 'npy' },
      model: { uri: '/models/m.json', backend: 'auto', format: 'layers-model', runtime: 'wasm' },
      preprocess: null,
      taps: [{ layer: 'dense_1', at: 'output', as: 'dense_1', reduce: 'none', normalize: 'none', dtype: 'float32', shape: [4], layout: 'nhwc' }],
      trigger: 'manual',
      incremental: null,
      batchSize: 32,
      shardSize: 1024,
      rows: 3,
      errorRows: 0,
      files: [join(sink, name, '0123456789abcdef', runId, 'part-00000.arrow')],
      errorFiles: [],
      shards: [
        {
          index: 0,
          rows: 3,
          errorRows: 0,
          file: join(sink, name, '0123456789abcdef', runId, 'part-00000.arrow'),
          errorsFile: null,
          bytes: 100,
          seconds: 1,
          decodeMs: 1,
          forwardMs: 2,
        },
      ],
      failedShards: [],
    });
    const goodId = '20261127T061502-aaaaaa';
    await put(`good/0123456789abcdef/${goodId}/_manifest.json`, JSON.stringify(manifest(goodId, 'good')));
    const evilKey = 'evil/0123456789abcdef/20261127T061503-bbbbbb/_manifest.json';
    await put(evilKey, JSON.stringify({ ...manifest('20261127T061503-bbbbbb', 'evil'), rows: XSS, errorRows: XSS, createdAt: 'yesterday' }));
    // a manifest that claims to be another run would overwrite that run's record
    const liarKey = 'liar/0123456789abcdef/20261127T061504-cccccc/_manifest.json';
    await put(liarKey, JSON.stringify(manifest(goodId, 'liar')));
    const brokenKey = 'broken/0123456789abcdef/20261127T061505-dddddd/_manifest.json';
    await put(brokenKey, '{"runId": ');

    try {
      const r = await runCli(['runs', '--rebuild', sink, '--json'], env2);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('restored 1 run record(s)');
      const warnings = r.stderr.split('\n').filter((l) => l.startsWith('layertap: warning: skipped'));
      expect(warnings).toEqual([
        `layertap: warning: skipped ${join(sink, brokenKey)}: not JSON (Unexpected end of JSON input)`,
        `layertap: warning: skipped ${join(sink, evilKey)}: rows: Invalid input: expected number, received string; errorRows: Invalid input: expected number, received string; createdAt: Invalid ISO datetime`,
        `layertap: warning: skipped ${join(sink, liarKey)}: runId: "${goodId}" does not match the run folder "20261127T061504-cccccc"`,
      ]);
      expect((JSON.parse(r.stdout) as { runs: Array<{ runId: string; name: string }> }).runs.map((x) => [x.runId, x.name])).toEqual([[goodId, 'good']]);

      // a record written straight into Redis (anyone with access to it can) with the same values
      const redis = new Redis(REDIS_URL);
      const badId = '20261127T061509-eeeeee';
      const badRecord = {
        runId: badId,
        name: XSS,
        fingerprint: '0123456789abcdef',
        status: 'committed',
        trigger: 'manual',
        createdAt: 'yesterday',
        shards: XSS,
        totalRows: XSS,
        rows: XSS,
        errorRows: XSS,
        failedShards: [],
        outputUri: XSS,
      };
      await redis.multi().set(`${p2}:layertap:run:${badId}`, JSON.stringify(badRecord)).zadd(`${p2}:layertap:runs`, Date.now(), badId).exec();
      redis.disconnect();

      const warned: string[] = [];
      const dash = await startDashboard({ settings: { redisUrl: REDIS_URL, prefix: p2 }, port: 0, refreshSeconds: 0, onWarning: (m) => warned.push(m) });
      try {
        for (let i = 0; i < 2; i++) {
          const page = await fetch(`${dash.url}/runs`);
          expect(page.status).toBe(200);
          const html = await page.text();
          expect(html).toContain(`data-run-id="${goodId}"`);
          expect(html).not.toContain('<script');
          expect(html).not.toContain(badId);
        }
        const api = (await (await fetch(`${dash.url}/api/runs`)).json()) as { runs: Array<{ runId: string }> };
        expect(api.runs.map((x) => x.runId)).toEqual([goodId]);
        // once per record, not once per page load
        expect(warned).toEqual([
          `run record ${badId} skipped: name: must be one path segment (no '/', '\\' or control characters; not '.' or '..'); createdAt: Invalid input: expected number, received string; shards: Invalid input: expected number, received string; totalRows: Invalid input: expected number, received string; rows: Invalid input: expected number, received string; errorRows: Invalid input: expected number, received string`,
        ]);
      } finally {
        await dash.close();
      }
      const listed = await runCli(['runs', '--json'], env2);
      expect(listed.code, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as { runs: Array<{ runId: string }> }).runs.map((x) => x.runId)).toEqual([goodId]);
      expect(listed.stderr).toContain(`layertap: warning: run record ${badId} skipped: name: must be one path segment`);
      expect(listed.stderr.match(/run record \S+ skipped/g)).toHaveLength(1);
    } finally {
      await clean2();
    }
  });
});
