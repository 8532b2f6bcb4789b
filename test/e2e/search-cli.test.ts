import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';
import { TEXT_DIR } from '../helpers/models.js';

interface Sentence {
  id: string;
  text: string;
}

// `layertap search` on a real run of the text fixture: a row's own text, embedded by the run's own
// model, preprocessing and tap, finds that row first with cosine 1.
describe('layertap search', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };
  let sentences: Sentence[] = [];
  let output = '';
  let job = '';

  beforeAll(async () => {
    tmp = await tempDir();
    // the model in a folder of its own, so that a test can change its tokenizer
    await cp(TEXT_DIR, join(tmp.dir, 'model'), { recursive: true });
    sentences = (await readFile(join(TEXT_DIR, 'sentences.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Sentence);
    job = join(tmp.dir, 'job.yaml');
    await writeFile(
      job,
      [
        'name: search-text',
        'source: { uri: ./model/sentences.jsonl, idColumn: id, inputColumn: text }',
        'model: { uri: ./model/model.onnx }',
        'preprocess: { maxLength: 32 }',
        'taps:',
        '  - { layer: encoder.layer.3, reduce: mean, as: mean3 }',
        '  - { layer: pooler, as: pooler, dtype: float16 }',
        'batchSize: 4',
        'shardSize: 4',
        'sink: { uri: ./out }',
      ].join('\n'),
    );
    const r = await runCli(['run', job, '--threads', '1', '--json'], env, 120_000);
    expect(r.code, r.stderr).toBe(0);
    output = (JSON.parse(r.stdout) as { output: { uri: string } }).output.uri;
  }, 180_000);

  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it("finds each row first, with cosine 1, from the row's own text", async () => {
    for (const s of [sentences[0]!, sentences[6]!]) {
      const r = await runCli(['search', output, '--text', s.text, '-k', '3', '--json'], {}, 60_000);
      expect(r.code, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as { query: { text: string }; tap: string; neighbours: Array<{ id: string; score: number }> };
      expect(got.query).toEqual({ text: s.text });
      expect(got.tap).toBe('mean3');
      expect(got.neighbours).toHaveLength(3);
      expect(got.neighbours[0]!.id).toBe(s.id);
      expect(Math.abs(got.neighbours[0]!.score - 1)).toBeLessThan(1e-5);
      expect(got.neighbours[1]!.score).toBeLessThan(1 - 1e-5);
    }
  });

  it('searches another tap (a float16 one) and takes the job file for its newest run', async () => {
    const s = sentences[3]!;
    const r = await runCli(['search', job, '--text', s.text, '--tap', 'pooler', '-k', '1', '--json'], {}, 60_000);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { tap: string; neighbours: Array<{ id: string; score: number }> };
    expect(got.tap).toBe('pooler');
    expect(got.neighbours[0]!.id).toBe(s.id);
    expect(Math.abs(got.neighbours[0]!.score - 1)).toBeLessThan(1e-5);
  });

  it('refuses, exit 2, a query the model cannot take, and a model whose fingerprint changed', async () => {
    const img = await runCli(['search', output, '--image', join(tmp.dir, 'job.yaml')], {}, 60_000);
    expect({ code: img.code, stderr: img.stderr }).toEqual({
      code: 2,
      stderr: "layertap: --image needs an image model; this run's model takes text (use --text)\n",
    });
    const none = await runCli(['search', output], {}, 60_000);
    expect({ code: none.code, stderr: none.stderr }).toEqual({ code: 2, stderr: 'layertap: search: give one query, --text "..." or --image FILE\n' });

    // a changed tokenizer makes another vector space
    const cfg = join(tmp.dir, 'model', 'tokenizer_config.json');
    const before = await readFile(cfg, 'utf8');
    await writeFile(cfg, before.replace(/}\s*$/, ', "changed": true}\n'));
    try {
      const r = await runCli(['search', output, '--text', 'cat', '--json'], {}, 60_000);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(
          `^layertap: the model at ${join(tmp.dir, 'model', 'model.onnx').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} now gives fingerprint [0-9a-f]{16}, not the run's [0-9a-f]{16}: it changed since run \\S+, so its queries would not compare with the run's rows\\n$`,
        ),
      );
    } finally {
      await writeFile(cfg, before);
    }
  });
});
