import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { LayertapClient } from '../../src/queue/client.js';
import type { ShardResult } from '../../src/queue/types.js';
import { LayertapWorker } from '../../src/queue/worker.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';
import { waitForFinal } from './reliability-harness.js';

const TEXT_MODEL = fileURLToPath(new URL('../fixtures/text-model/model.onnx', import.meta.url));

describe('row ids: error rows carry their source position, duplicate ids are counted', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };
  let client: LayertapClient;
  let worker: LayertapWorker;
  const results = new Map<string, ShardResult[]>();

  beforeAll(async () => {
    tmp = await tempDir();
    client = new LayertapClient(settings);
    worker = new LayertapWorker({
      settings,
      threads: 1,
      log: () => undefined,
      onShard: (origin, result) => results.set(origin.runId, [...(results.get(origin.runId) ?? []), result]),
    });
    await Promise.all([client.waitUntilReady(), worker.start()]);
  }, 30_000);
  afterAll(async () => {
    await worker?.close({ graceMs: 0 });
    await client?.close();
    await cleanup();
    await tmp.remove();
  });

  /** Embeds the JSONL `lines` with the text model in shards of `shardSize`; returns the run's summary. */
  async function run(name: string, lines: string[], shardSize: number) {
    const file = join(tmp.dir, `${name}.jsonl`);
    await writeFile(file, lines.join('\n') + '\n');
    const job = await resolveJob(
      parseJob({
        name,
        source: { uri: file, idColumn: 'id', inputColumn: 'text' },
        model: { uri: TEXT_MODEL },
        taps: [{ layer: 'pooler' }],
        batchSize: 2,
        shardSize,
        sink: { uri: join(tmp.dir, 'out') },
      }),
    );
    const rec = await client.enqueue(job);
    const summary = await waitForFinal(client, rec.runId, 60_000);
    expect(summary.status).toBe('committed');
    return summary;
  }

  const ids = async (files: string[]) => (await Promise.all(files.map((f) => readPartFile(f)))).flatMap((t) => [...t.getChild('id')!].map(String));

  it('a null id and a line that is not JSON are error rows with id null and their position, never the row index as id', async () => {
    // the old ids of the error rows ("1" and "2", their row indexes) are the ids of real rows
    const lines = ['{"id": "2", "text": "first"}', 'this is not json', '{"id": null, "text": "no id"}', '{"id": "1", "text": "one"}'];
    const summary = await run('ids', lines, 2);
    expect(summary.rows).toBe(2);
    expect(summary.errorRows).toBe(2);
    expect(await ids(summary.output.files)).toEqual(['2', '1']);
    const errors = (await Promise.all(summary.output.errorFiles.map((f) => readPartFile(f)))).flatMap((t) => t.toArray().map((r) => r.toJSON()));
    expect(errors).toEqual([
      {
        id: null,
        stage: 'read',
        message: `row 1: text: line at byte ${lines[0]!.length + 1} is not valid JSON: Unexpected token 'h', "this is not json" is not valid JSON`,
        position: 1n,
      },
      // the second shard's first row: its position counts from the source's start, not the shard's
      { id: null, stage: 'read', message: "row 2: the id column 'id' is null", position: 2n },
    ]);
  }, 90_000);

  it('counts duplicate ids within each shard and across the run: shard results, manifest and run record', async () => {
    const order = ['a', 'b', 'a', 'c', 'a', 'd', 'b', 'e'];
    const summary = await run(
      'dups',
      order.map((id, i) => JSON.stringify({ id, text: `row ${i}` })),
      3,
    );
    expect(summary.rows).toBe(8);
    expect(await ids(summary.output.files)).toEqual(order);
    const shards = (results.get(summary.runId) ?? []).sort((x, y) => x.index - y.index);
    expect(shards.map((s) => [s.index, s.duplicateIds ?? null])).toEqual([
      [0, { count: 1, examples: ['a'] }],
      [1, null],
      [2, null],
    ]);
    const manifest = JSON.parse(await readFile(summary.output.manifest!, 'utf8')) as { duplicateIds: unknown };
    expect(manifest.duplicateIds).toEqual({ count: 3, examples: ['a', 'b'] });
    expect((await client.registry.get(summary.runId))?.duplicateIds).toEqual({ count: 3, examples: ['a', 'b'] });
  }, 90_000);
});
