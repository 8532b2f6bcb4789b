import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/ops/logger.js';
import { callbackLogger } from '../../src/types/logger.js';
import { LayertapClient } from '../../src/queue/client.js';
import type { RunSummary } from '../../src/queue/types.js';
import { writeNpy } from '../../src/sources/npy.js';
import { runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { readArrow, REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

/** A TCP port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Prometheus text exposition -> { 'name{a="x",b="y"}': value } (labels as written). */
function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** Series of `name` whose labels include every pair in `labels`. */
function series(m: Map<string, number>, name: string, labels: Record<string, string> = {}): number[] {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return [...m].filter(([key]) => (key === name || key.startsWith(`${name}{`)) && want.every((w) => key.includes(w))).map(([, v]) => v);
}

function one(m: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const s = series(m, name, labels);
  if (s.length !== 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${s.length} series`);
  return s[0]!;
}

// A real `layertap worker --metrics-port` process runs a small job; /metrics must then account
// for exactly what was committed.
describe('layertap worker --metrics-port', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix, LAYERTAP_LOG_FORMAT: '' };
  let worker: CliProcess | null = null;
  let client: LayertapClient;
  const N = 42;
  const NAN_ROWS = [5, 30];
  const SHARD = 16;
  const BATCH = 6;

  beforeAll(async () => {
    tmp = await tempDir();
    const per = 28 * 28;
    const data = new Float32Array(N * per);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.5 + 0.5;
    // rows with a NaN input value are error rows (stage input), left out of the forward pass
    for (const r of NAN_ROWS) data[r * per + 100] = Number.NaN;
    await writeNpy(join(tmp.dir, 'rows.npy'), data, [N, 28, 28, 1]);
    const job = {
      name: 'metrics',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL },
      taps: [
        { layer: 'linear_class.0', at: 'input', as: 'hidden' },
        { layer: 'conv_16.0', reduce: 'mean', as: 'conv_mean' },
      ],
      batchSize: BATCH,
      shardSize: SHARD,
      sink: { uri: join(tmp.dir, 'out') },
    };
    await writeFile(join(tmp.dir, 'job.json'), JSON.stringify(job));
    client = new LayertapClient({ redisUrl: REDIS_URL, prefix });
  });
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await client?.close();
    await cleanup();
    await tmp.remove();
  });

  it('counts committed rows and error rows per run and tap, batches, backend, queue depth and pool use', async () => {
    const port = await freePort();
    worker = startCli(['worker', '--threads', '1', '--concurrency', '1', '--metrics-port', String(port), '--metrics-host', '127.0.0.1'], env);
    await worker.waitFor('layertap worker: ready');

    const enq = await runCli(['enqueue', join(tmp.dir, 'job.json'), '--json'], env, 20_000);
    expect(enq.code, enq.stderr).toBe(0);
    const { runId, shards } = JSON.parse(enq.stdout) as { runId: string; shards: number };
    expect(shards).toBe(3);

    let s: RunSummary | null = null;
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      s = await client.status(runId);
      if (s && ['committed', 'failed', 'partial'].includes(s.status)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(s?.status).toBe('committed');
    const summary = s!;
    expect(summary.rows).toBe(N - NAN_ROWS.length);
    expect(summary.errorRows).toBe(NAN_ROWS.length);
    // rows actually in the committed part files
    let committed = 0;
    for (const f of summary.output.files) committed += (await readArrow(f)).numRows;
    expect(committed).toBe(summary.rows);

    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const m = parseMetrics(text);

    for (const tap of ['hidden', 'conv_mean']) {
      expect(one(m, 'layertap_rows_total', { run: runId, name: 'metrics', tap })).toBe(committed);
      expect(one(m, 'layertap_error_rows_total', { run: runId, name: 'metrics', tap })).toBe(NAN_ROWS.length);
    }
    expect(one(m, 'layertap_shards_committed_total', { run: runId })).toBe(3);

    // shards of 16, 16 and 10 rows in batches of 6: 3 + 3 + 2 forward passes
    const batches = [16, 16, 10].reduce((a, n) => a + Math.ceil(n / BATCH), 0);
    const backend = summary.backend!;
    expect(backend).toMatch(/^(wasm|cpu|tensorflow)$/);
    for (const phase of ['decode', 'forward', 'total']) {
      expect(one(m, 'layertap_batch_duration_seconds_count', { phase, backend })).toBe(batches);
      expect(one(m, 'layertap_batch_duration_seconds_bucket', { phase, backend, le: '+Inf' })).toBe(batches);
    }
    expect(one(m, 'layertap_batch_duration_seconds_sum', { phase: 'forward', backend })).toBeGreaterThan(0);
    expect(one(m, 'layertap_batch_rows_total', { backend })).toBe(N);
    expect(one(m, 'layertap_backend_in_use', { backend })).toBe(1);
    expect(series(m, 'layertap_backend_in_use')).toHaveLength(1);

    expect(one(m, 'layertap_queue_jobs', { queue: 'shards', state: 'completed' })).toBe(3);
    expect(one(m, 'layertap_queue_jobs', { queue: 'shards', state: 'waiting' })).toBe(0);
    expect(one(m, 'layertap_queue_jobs', { queue: 'runs', state: 'completed' })).toBe(1);
    expect(one(m, 'layertap_queue_jobs', { queue: 'schedules', state: 'waiting' })).toBe(0);

    const util = one(m, 'layertap_pool_utilization', { threads: '1' });
    expect(util).toBeGreaterThan(0);
    expect(util).toBeLessThanOrEqual(1);
    expect(one(m, 'layertap_pool_queued_batches', { threads: '1' })).toBe(0);
    expect(one(m, 'layertap_active_shards')).toBe(0);
    expect(series(m, 'layertap_worker_info')).toEqual([1]);
    expect(text).toContain('# TYPE layertap_batch_duration_seconds histogram');
    expect(text).toContain('process_cpu_seconds_total');

    // logs: one JSON object per stderr line, each naming the worker; shard lines their run and shard
    expect(await worker.stop('SIGTERM')).toBe(0);
    const lines = worker
      .stderr()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { level: string; msg: string; worker?: string; runId?: string; shard?: number; time: string });
    const name = /worker="([^"]+)"/.exec([...m.keys()].find((k) => k.startsWith('layertap_worker_info{'))!)![1]!;
    expect(name).toMatch(/^.+:\d+$/);
    for (const l of lines) {
      expect(l.worker).toBe(name);
      expect(Number.isNaN(Date.parse(l.time))).toBe(false);
    }
    expect(lines.some((l) => l.msg.startsWith('layertap worker: ready'))).toBe(true);
    const done = lines.filter((l) => /shard \d+: \d+ rows, \d+ errors/.test(l.msg));
    expect(done.map((l) => [l.runId, l.shard]).sort()).toEqual([0, 1, 2].map((i) => [runId, i]));
    // the fields come from where the work is, not from the text: counts too, at the level the event has
    expect(done.map((l) => l.level)).toEqual(['info', 'info', 'info']);
    const shardRecords = done as unknown as Array<{ rows: number; errorRows: number }>;
    expect(shardRecords.reduce((a, l) => a + l.rows, 0)).toBe(summary.rows);
    expect(shardRecords.reduce((a, l) => a + l.errorRows, 0)).toBe(summary.errorRows);
    expect(lines.find((l) => l.msg.includes(`run ${runId} committed`))?.runId).toBe(runId);
  }, 30_000);

  it('exits 1 naming the flag when the metrics port is taken', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await runCli(['worker', '--threads', '1', '--metrics-port', String(port), '--metrics-host', '127.0.0.1'], env, 20_000);
      expect(r.code, r.stderr).toBe(1);
      const last = JSON.parse(r.stderr.trim().split('\n').pop()!) as { level: string; msg: string };
      expect(last.level).toBe('error');
      expect(last.msg).toContain(`layertap: --metrics-port ${port}: listen EADDRINUSE`);
    } finally {
      busy.close();
    }
  }, 20_000);
});

describe('worker log lines', () => {
  it('carry the fields of every logger they were bound by', () => {
    const records: Array<[string, string, Record<string, unknown>]> = [];
    const root = callbackLogger((msg, level, fields) => records.push([level, msg, fields]));
    const worker = root.child({ worker: 'h:1' });
    worker.child({ runId: 'r1', shard: 2 }).warn({ attempt: 1 }, 'handed back');
    worker.info({ threads: 2 }, 'pool of 2 thread(s)');
    expect(records).toEqual([
      ['warn', 'handed back', { worker: 'h:1', runId: 'r1', shard: 2, attempt: 1 }],
      ['info', 'pool of 2 thread(s)', { worker: 'h:1', threads: 2 }],
    ]);
  });

  it('are JSON with level labels, or text for a person', () => {
    const json: string[] = [];
    createLogger({ format: 'json', destination: { write: (l) => json.push(l) }, bindings: { worker: 'h:1' } }).info(
      { runId: 'r1', shard: 2 },
      'layertap worker: run r1 shard 2: started',
    );
    const rec = JSON.parse(json[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 'info', worker: 'h:1', runId: 'r1', shard: 2, msg: 'layertap worker: run r1 shard 2: started' });

    const pretty: string[] = [];
    createLogger({ format: 'pretty', destination: { write: (l) => pretty.push(l) }, bindings: { worker: 'h:1' } }).warn(
      { runId: 'r1' },
      'layertap worker: warning: x',
    );
    expect(pretty).toHaveLength(1);
    expect(pretty[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: layertap worker: warning: x .*\n$/);
    expect(pretty[0]).toContain('"worker":"h:1"');
    expect(pretty[0]).toContain('"runId":"r1"');
    expect(pretty[0]!.split('\n')).toHaveLength(2);
  });
});
