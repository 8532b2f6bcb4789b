import { existsSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob, type ResolvedJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { Redis } from 'ioredis';
import type { RunSpec, ShardTask } from '../../src/queue/types.js';
import { REDIS_URL, SEED, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

/** Wait until a job has finished, one way or the other. */
async function finished(queue: Queue, id: string, timeoutMs = 20_000): Promise<Job> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    // the state first: a job read before it finished would not have its outcome
    const state = await queue.getJobState(id);
    const job = state === 'completed' || state === 'failed' ? await Job.fromId(queue, id) : undefined;
    if (job) return job;
    if (Date.now() > end) throw new Error(`job ${id} still ${state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Anyone who can write to Redis (or, before it was guarded, a web page through the dashboard) can
// put a shard job on the queue; its data decides what is read and where data and signed requests
// go. A worker checks the data against what a shard job carries before it acts on it.
describe('shard job data is validated before a worker acts on it', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  let queue: Queue<ShardTask>;
  let redis: Redis;
  let worker: LayertapWorker;
  let job: ResolvedJob;
  const lines: string[] = [];

  beforeAll(async () => {
    tmp = await tempDir();
    await copyFile(join(SEED, 'input_nhwc.npy'), join(tmp.dir, 'x.npy'));
    job = await resolveJob(
      parseJob({
        name: 'checked',
        source: { uri: join(tmp.dir, 'x.npy') },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_1.1' }],
        sink: { uri: join(tmp.dir, 'out') },
      }),
    );
    queue = new Queue<ShardTask>('shards', { connection: { url: REDIS_URL }, prefix });
    redis = new Redis(REDIS_URL);
    worker = new LayertapWorker({ settings: { redisUrl: REDIS_URL, prefix }, threads: 1, concurrency: 1, log: (l) => lines.push(l) });
    await worker.start();
  }, 30_000);
  afterAll(async () => {
    await worker?.close({ graceMs: 0 });
    await queue?.close();
    redis?.disconnect();
    await cleanup();
    await tmp.remove();
  });

  const add = (id: string, data: unknown) => queue.add('shard', data as ShardTask, { jobId: id, attempts: 3, backoff: { type: 'fixed', delay: 100 } });

  /** Stores a run's spec as enqueue does (or, with a bad `job`, as someone with Redis access could). */
  const putSpec = (runId: string, j: unknown, more: Partial<RunSpec> = {}) =>
    redis.set(
      `${prefix}:layertap:run:${runId}:spec`,
      JSON.stringify({ runId, job: j, createdAt: 0, trigger: 'manual', shards: 1, totalRows: 3, window: 1, idPlan: false, baseRunId: null, ...more }),
    );

  /** A shard job of a run whose spec holds `j`. */
  const addWithJob = async (id: string, runId: string, j: unknown, shard: Record<string, unknown> = { index: 0, start: 0, count: 3 }) => {
    await putSpec(runId, j);
    await add(id, { runId, ...shard });
  };

  it('runs a shard job as enqueue makes it', async () => {
    await addWithJob('good-0', '20261127T061502-aaaaaa', job);
    // the spec is read once per run; the worker checks it and then the shard's range
    const done = await finished(queue, 'good-0');
    expect(await done.getState(), done.failedReason).toBe('completed');
    expect((done.returnvalue as { rows: number }).rows).toBe(3);
  }, 30_000);

  it('fails a shard job with bad data at once (unrecoverable, not retried), naming the field', async () => {
    const sinkDir = join(tmp.dir, 'elsewhere');
    // what every shard shares is in the run's spec, stored once: checked there, with the same messages
    const cases: Array<[string, string, unknown, number, string]> = [
      // an extra field in job.sink (not something a shard job carries)
      [
        'extra',
        '20261127T061502-bbbbbb',
        { ...job, sink: { ...job.sink, uri: sinkDir, acl: 'public-read' } },
        3,
        "invalid run spec: unknown field 'job.sink.acl'",
      ],
      // an endpoint that is no http(s) URL
      [
        'endpoint',
        '20261127T061502-cccccc',
        { ...job, sink: { uri: 's3://bucket/out', format: 'arrow', endpoint: 'gopher://203.0.113.9:70/' } },
        3,
        'invalid run spec: job.sink.endpoint: must be an http:// or https:// URL',
      ],
      // an endpoint on a local sink, where it means nothing
      [
        'local-endpoint',
        '20261127T061502-dddddd',
        { ...job, sink: { ...job.sink, endpoint: 'http://203.0.113.9/' } },
        3,
        'invalid run spec: job.sink.endpoint: only applies to s3:// sinks',
      ],
      // a sink that is not an object at all
      [
        'sink-type',
        '20261127T061502-eeeeee',
        { ...job, sink: 'http://203.0.113.9/' },
        3,
        'invalid run spec: job.sink: Invalid input: expected object, received string',
      ],
      // names the worker's registries do not hold: what planning checked, checked again
      [
        'type',
        '20261127T061502-ababab',
        { ...job, source: { ...job.source, type: 'csv' } },
        3,
        "invalid run spec: job.source.type: unknown type 'csv'; types are: images, npy, arrow, parquet, jsonl, text",
      ],
      [
        'format',
        '20261127T061502-acacac',
        { ...job, sink: { ...job.sink, format: 'parqet' } },
        3,
        "invalid run spec: job.sink.format: unknown format 'parqet' (did you mean 'parquet'?); formats are: arrow, parquet, lancedb",
      ],
      [
        'scheme',
        '20261127T061502-adadad',
        { ...job, sink: { ...job.sink, uri: 'gs://bucket/out' } },
        3,
        "invalid run spec: job.sink.uri: unknown scheme 'gs' (did you mean 's3'?); schemes are: file, s3",
      ],
      [
        'backend',
        '20261127T061502-aeaeae',
        { ...job, model: { ...job.model, backend: 'onnx' } },
        3,
        `invalid run spec: job.model.backend: 'onnx' runs .onnx models; '${SEED_MODEL}' is a TF.js model (backend: auto | tensorflow | wasm | cpu)`,
      ],
      // a run id that would leave the dataset's folder, and a negative row count
      [
        'paths',
        '../../escape',
        job,
        -3,
        "invalid shard job data: runId: must be one path segment (no '/', '\\' or control characters; not '.' or '..'); count: Too small: expected number to be >=0",
      ],
    ];
    for (const [id, runId, j, count] of cases) await addWithJob(id, runId, j, { index: 0, start: 0, count });
    for (const [id, , , , reason] of cases) {
      const j = await finished(queue, id);
      expect(await j.getState(), id).toBe('failed');
      expect(j.failedReason, id).toBe(reason);
      // UnrecoverableError: one attempt of the three allowed
      expect(j.attemptsMade, id).toBe(1);
    }
    expect(existsSync(sinkDir)).toBe(false);
    expect(lines.filter((l) => l.includes('invalid shard job data') || l.includes('invalid run spec'))).toHaveLength(cases.length);
  }, 60_000);

  it('fails a run job with bad data the same way (the finalizer writes where its data says)', async () => {
    const runs = new Queue('runs', { connection: { url: REDIS_URL }, prefix });
    try {
      await putSpec(
        '20261127T061502-ffffff',
        { ...job, sink: { ...job.sink, uri: join(tmp.dir, 'elsewhere') }, taps: [] },
        { createdAt: 'now' as unknown as number },
      );
      await runs.add('run', { runId: '20261127T061502-ffffff' }, { jobId: 'bad-run', attempts: 5, backoff: { type: 'fixed', delay: 100 } });
      await runs.add('run', { runId: '20261127T061502-ffffff', job }, { jobId: 'bad-run-data', attempts: 5, backoff: { type: 'fixed', delay: 100 } });
      const j = await finished(runs, 'bad-run');
      expect(await j.getState()).toBe('failed');
      expect(j.failedReason).toBe(
        'invalid run spec: job.taps: Too small: expected array to have >=1 items; createdAt: Invalid input: expected number, received string',
      );
      expect(j.attemptsMade).toBe(1);
      const k = await finished(runs, 'bad-run-data');
      expect(k.failedReason).toBe("invalid run job data: unknown field 'job'");
      expect(k.attemptsMade).toBe(1);
      expect(j.attemptsMade).toBe(1);
      expect(existsSync(join(tmp.dir, 'elsewhere'))).toBe(false);
    } finally {
      await runs.close();
    }
  }, 30_000);

  it('fails a schedule tick with bad data the same way (a tick enqueues a run)', async () => {
    const ticks = new Queue('schedules', { connection: { url: REDIS_URL }, prefix });
    try {
      const config = parseJob({
        name: 'ticked',
        source: { uri: join(tmp.dir, 'x.npy') },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_1.1' }],
        sink: { uri: join(tmp.dir, 'ticked') },
      });
      await ticks.add(
        'tick',
        { scheduleId: 'nightly', job: { ...config, sink: { ...config.sink, endpoint: 'ftp://203.0.113.9/' } } },
        { jobId: 'bad-tick', attempts: 3, backoff: { type: 'fixed', delay: 100 } },
      );
      const j = await finished(ticks, 'bad-tick');
      expect(await j.getState()).toBe('failed');
      expect(j.failedReason).toBe('invalid schedule tick job data: job.sink.endpoint: must be an http:// or https:// URL');
      expect(j.attemptsMade).toBe(1);
      expect(lines).toContain(
        'layertap worker: schedule nightly tick failed: invalid schedule tick job data: job.sink.endpoint: must be an http:// or https:// URL',
      );
    } finally {
      await ticks.close();
    }
  }, 30_000);
});
