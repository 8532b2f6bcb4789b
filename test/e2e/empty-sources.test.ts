import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Field, Float32, List, Schema, Table, Utf8, tableToIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayertapClient } from '../../src/queue/client.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { writeNpy } from '../../src/sources/index.js';
import { loadParquetWasm } from '../../src/storage/index.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { startS3Server, testBucket, type S3TestServer } from '../helpers/s3.js';
import { waitForFinal } from '../integration/reliability-harness.js';

const TEXT_MODEL = fileURLToPath(new URL('../fixtures/text-model/model.onnx', import.meta.url));

// A scheduled source that emptied must be able to say so: an empty source plans 0 rows and
// commits a run of 0 rows (manifest and _SUCCESS), through plan, run and enqueue alike.
describe('empty sources through the CLI', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let s3: S3TestServer;
  const bucket = testBucket('empty');
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };
  /** [what, job file] for every kind of source, each without a row */
  const jobs: Array<[string, string]> = [];

  beforeAll(async () => {
    tmp = await tempDir();
    s3 = await startS3Server([bucket]);
    // something under another prefix, so that the bucket is not empty, only the source's prefix
    await s3.put(bucket, 'other/a.png', 'not under the source prefix');
    const images = join(tmp.dir, 'images');
    await mkdir(images);
    await writeFile(join(images, 'notes.txt'), 'not an image');
    await writeNpy(join(tmp.dir, 'empty.npy'), new Float32Array(0), [0, 28, 28, 1]);
    const list = new Schema([new Field('id', new Utf8(), false), new Field('v', new List(new Field('item', new Float32(), true)), true)]);
    await writeFile(join(tmp.dir, 'empty.arrow'), tableToIPC(new Table(list), 'file'));
    const pq = await loadParquetWasm();
    await writeFile(join(tmp.dir, 'empty.parquet'), pq.writeParquet(pq.Table.fromIPCStream(tableToIPC(new Table(list), 'stream'))));
    await writeFile(join(tmp.dir, 'empty.jsonl'), '');
    await writeFile(join(tmp.dir, 'empty.txt'), '');
    const sources: Array<[string, Record<string, unknown>, 'seed' | 'text']> = [
      ['images folder', { uri: images }, 'seed'],
      ['.npy', { uri: join(tmp.dir, 'empty.npy') }, 'seed'],
      ['Arrow', { uri: join(tmp.dir, 'empty.arrow') }, 'seed'],
      ['Parquet', { uri: join(tmp.dir, 'empty.parquet') }, 'seed'],
      ['JSONL', { uri: join(tmp.dir, 'empty.jsonl'), idColumn: 'id', inputColumn: 'text' }, 'text'],
      ['.txt', { uri: join(tmp.dir, 'empty.txt') }, 'text'],
      ['s3:// prefix', { uri: `s3://${bucket}/photos`, endpoint: s3.endpoint }, 'seed'],
    ];
    for (const [what, source, model] of sources) {
      const name = what
        .replace(/[^a-z0-9]+/gi, '-')
        .replace(/^-|-$/g, '')
        .toLowerCase();
      const file = join(tmp.dir, `${name}.json`);
      await writeFile(
        file,
        JSON.stringify({
          name,
          source,
          model: { uri: model === 'seed' ? SEED_MODEL : TEXT_MODEL },
          taps: [{ layer: model === 'seed' ? 'linear_1.1' : 'pooler' }],
          sink: { uri: join(tmp.dir, 'out') },
        }),
      );
      jobs.push([what, file]);
    }
  }, 30_000);
  afterAll(async () => {
    await s3?.close();
    await cleanup();
    await tmp.remove();
  });

  it('plan: 0 rows in 0 shards, exit 0', async () => {
    const got: Array<[string, number | null, number, number]> = [];
    for (const [what, file] of jobs) {
      const r = await runCli(['plan', file, '--json', '--rows-per-sec', '10'], { REDIS_URL: 'redis://127.0.0.1:9' });
      const e = r.code === 0 ? (JSON.parse(r.stdout) as { rows: number; shards: number }) : { rows: -1, shards: -1 };
      got.push([what, r.code, e.rows, e.shards]);
    }
    expect(got).toEqual(jobs.map(([what]) => [what, 0, 0, 0]));
  }, 120_000);

  it('run: exit 0, the run committed with 0 rows, its manifest and _SUCCESS written', async () => {
    const got: Array<[string, number | null, unknown]> = [];
    for (const [what, file] of jobs) {
      const r = await runCli(['run', file, '--json', '--threads', '1'], env);
      if (r.code !== 0) {
        got.push([what, r.code, r.stderr.trim()]);
        continue;
      }
      const s = JSON.parse(r.stdout) as {
        status: string;
        rows: number;
        errorRows: number;
        totalRows: number;
        shards: { total: number };
        output: { uri: string };
      };
      const manifest = JSON.parse(await readFile(join(s.output.uri, '_manifest.json'), 'utf8')) as { status: string; rows: number; files: string[] };
      got.push([
        what,
        r.code,
        {
          status: s.status,
          rows: s.rows,
          errorRows: s.errorRows,
          totalRows: s.totalRows,
          shards: s.shards.total,
          manifest: [manifest.status, manifest.rows, manifest.files],
          success: existsSync(join(s.output.uri, '_SUCCESS')),
        },
      ]);
    }
    const committed = { status: 'committed', rows: 0, errorRows: 0, totalRows: 0, shards: 0, manifest: ['committed', 0, []], success: true };
    expect(got).toEqual(jobs.map(([what]) => [what, 0, committed]));
  }, 240_000);

  it('enqueue: exit 0 with a run id, and the run ends committed with 0 rows', async () => {
    const settings = { redisUrl: REDIS_URL, prefix };
    const client = new LayertapClient(settings);
    const worker = new LayertapWorker({ settings, threads: 1, log: () => undefined });
    try {
      await Promise.all([client.waitUntilReady(), worker.start()]);
      const [what, file] = jobs.find(([w]) => w === 'JSONL')!;
      const r = await runCli(['enqueue', file, '--json'], env);
      expect([what, r.code], r.stderr).toEqual([what, 0]);
      const { runId } = JSON.parse(r.stdout) as { runId: string };
      const s = await waitForFinal(client, runId, 30_000);
      expect([s.status, s.rows, s.totalRows]).toEqual(['committed', 0, 0]);
    } finally {
      await worker.close({ graceMs: 0 });
      await client.close();
    }
  }, 90_000);
});
