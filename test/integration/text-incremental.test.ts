import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';

const TEXT = fileURLToPath(new URL('../fixtures/text-model/', import.meta.url));

// A text run's manifest names its columns' layouts ('pooled'), not the runtime's: it must still
// serve as the base of an incremental run, whose spec carries the base run's runtime layout.
describe('an incremental text run on a base whose columns are pooled', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();

  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('carries every unchanged row over, and its part files say pooled as the base run did', async () => {
    const job = parseJob({
      name: 'text-inc',
      source: { uri: join(TEXT, 'sentences.jsonl'), idColumn: 'id', inputColumn: 'text' },
      model: { uri: join(TEXT, 'model.onnx') },
      taps: [
        { layer: 'encoder.layer.3', reduce: 'mean', as: 'mean' },
        { layer: 'pooler', as: 'pooler' },
      ],
      batchSize: 4,
      shardSize: 4,
      incremental: true,
      sink: { uri: join(tmp.dir, 'out') },
    });
    const settings = { redisUrl: REDIS_URL, prefix };
    const first = await runJob(job, { settings, threads: 1 });
    expect(first.status).toBe('committed');
    const second = await runJob(job, { settings, threads: 1 });
    expect(second.status).toBe('committed');
    const m = JSON.parse(await readFile(second.output.manifest!, 'utf8')) as {
      incremental: unknown;
      taps: Array<{ as: string; shape: unknown; layout: unknown }>;
    };
    expect(m.incremental).toEqual({ baseRunId: first.runId, carriedRows: 10, embeddedRows: 0 });
    expect(m.taps.map(({ as, shape, layout }) => ({ as, shape, layout }))).toEqual([
      { as: 'mean', shape: [32], layout: 'pooled' },
      { as: 'pooler', shape: [32], layout: 'pooled' },
    ]);
    for (const file of second.output.files) {
      // after the id and the carried text
      const fields = (await readPartFile(file)).schema.fields.slice(2);
      expect(fields.map((f) => f.metadata.get('layertap.layout'))).toEqual(['pooled', 'pooled']);
    }
    // carried over bit for bit
    const column = async (files: string[]) =>
      (await Promise.all(files.map((f) => readPartFile(f)))).flatMap((t) => [...t.getChild('mean')!].map((v) => [...(v as Iterable<number>)]));
    expect(await column(second.output.files)).toEqual(await column(first.output.files));
  }, 60_000);
});
