import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/sources/npy.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, ROOT, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

// A bad job file fails before any work: exit code 2, the field named, nothing written or queued.
describe('bad job files', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };

  beforeAll(async () => {
    tmp = await tempDir();
    await writeNpy(join(tmp.dir, 'rows.npy'), new Float32Array(2 * 28 * 28), [2, 28, 28, 1]);
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  const base = () => ({
    name: 'bad',
    source: { uri: join(tmp.dir, 'rows.npy') },
    model: { uri: SEED_MODEL },
    taps: [{ layer: 'linear_1.1' }] as Array<Record<string, unknown>>,
    sink: { uri: join(tmp.dir, 'out') },
  });

  async function expectRejected(job: unknown, ...needles: string[]) {
    const file = join(tmp.dir, `job-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, JSON.stringify(job));
    const r = await runCli(['run', file], env);
    expect(r.code, r.stderr).toBe(2);
    for (const n of needles) expect(r.stderr).toContain(n);
    expect(existsSync(join(tmp.dir, 'out'))).toBe(false);
  }

  it('names an unknown layer, its nearest names, and lists the valid ones of a small model', async () => {
    const job = base();
    job.taps = [{ layer: 'linear_1.3' }];
    await expectRejected(
      job,
      "layertap: taps[0].layer: unknown layer 'linear_1.3' (did you mean 'linear_1.0' or 'linear_1.1'?); " +
        'layers are: input, conv_16.0, conv_16.1, conv_16.2, conv_32.0, conv_32.1, conv_32.2, linear_1.0, linear_1.1, linear_class.0, linear_class.1\n',
    );
    job.taps = [{ layer: 'linear_9' }];
    await expectRejected(job, "taps[0].layer: unknown layer 'linear_9'; layers are: input, conv_16.0, conv_16.1");
  });

  // the mistakes of a first hour, each with the one line `plan` prints (exit 2, nothing written)
  describe('first-hour mistakes: the exact message', () => {
    const TEXT = join(ROOT, 'test/fixtures/text-model');
    const yaml = (lines: Record<string, string>) =>
      [
        'name: first',
        'source:',
        `  uri: ${lines.source ?? join(TEXT, 'sentences.jsonl')}`,
        'model:',
        `  uri: ${join(TEXT, 'model.onnx')}`,
        'taps:',
        `  - layer: ${lines.layer ?? 'pooler'}`,
        lines.batch ?? 'batchSize: 16',
        'sink:',
        `  uri: ${lines.sink ?? join(tmp.dir, 'out')}`,
        '',
      ].join('\n');
    async function planError(text: string): Promise<string> {
      const file = join(tmp.dir, `first-${Math.random().toString(36).slice(2)}.yaml`);
      await writeFile(file, text);
      const r = await runCli(['plan', file], env);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(existsSync(join(tmp.dir, 'out'))).toBe(false);
      return r.stderr.replaceAll(file, 'JOB');
    }

    it('a misspelt field: did you mean', async () => {
      expect(await planError(yaml({ batch: 'batchsize: 16' }))).toBe(
        "layertap: invalid job file JOB:\n  - unknown field 'batchsize' (did you mean 'batchSize'?)\n",
      );
    });

    it('a value of the wrong type: what was given', async () => {
      expect(await planError(yaml({ batch: 'batchSize: sixteen' }))).toBe(
        'layertap: invalid job file JOB:\n  - batchSize: expected a number, got the string "sixteen"\n',
      );
    });

    it('an unknown layer of a large model: the 3 nearest names and the command that lists the rest', async () => {
      const model = join(TEXT, 'model.onnx');
      expect(await planError(yaml({ layer: 'encoder.layer.9' }))).toBe(
        `layertap: taps[0].layer: unknown layer 'encoder.layer.9' (did you mean 'encoder.layer.0', 'encoder.layer.1' or 'encoder.layer.2'?); \`layertap layers ${model}\` lists them\n`,
      );
    });

    it('a source path that does not exist: the name nearby, or what the folder holds', async () => {
      expect(await planError(yaml({ source: join(TEXT, 'sentence.jsonl') }))).toBe(
        `layertap: source.uri: no such file or directory: ${join(TEXT, 'sentence.jsonl')} (did you mean ${join(TEXT, 'sentences.jsonl')}?)\n`,
      );
      expect(await planError(yaml({ source: join(TEXT, 'nothing-like-it', 'x.jsonl') }))).toBe(
        `layertap: source.uri: no such file or directory: ${join(TEXT, 'nothing-like-it', 'x.jsonl')} (${TEXT} has no 'nothing-like-it'; it holds README.md, config.json, expected, model.onnx, sentences.jsonl, tokenizer.json, tokenizer_config.json, vocab.txt)\n`,
      );
    });

    it('an s3:// sink key that climbs: the field named once', async () => {
      expect(await planError(yaml({ sink: 's3://bucket/out/../up' }))).toBe(
        "layertap: sink.uri: the key 'out/../up' of s3://bucket/out/../up is not a plain relative key (no '.', '..' or NUL segments)\n",
      );
    });
  });

  it('names a missing source', async () => {
    const job = { ...base(), source: { uri: join(tmp.dir, 'nowhere.npy') } };
    await expectRejected(job, 'source.uri:', 'nowhere.npy');
  });

  it('names a bad field', async () => {
    await expectRejected({ ...base(), batchSize: 'many' }, 'batchSize');
    await expectRejected(
      { ...base(), taps: [{ layer: 'linear_1.1', reduce: 'median' }] },
      'taps[0].reduce: invalid value; choose one of "none", "mean", "max"',
    );
  });

  it('rejects rows that do not fit the model', async () => {
    await writeNpy(join(tmp.dir, 'wrong.npy'), new Float32Array(2 * 10), [2, 10]);
    await expectRejected({ ...base(), source: { uri: join(tmp.dir, 'wrong.npy') } }, 'source.uri: rows have shape [10] but the model takes [28,28,1] per row');
  });

  it('exits 2 on a bad command-line argument, naming it', async () => {
    const r = await runCli(['run', 'job.yaml', '--workers', '0'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--workers must be a positive integer');
    const missing = await runCli(['layers'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'model-uri'");
  });

  it('queues nothing for a rejected job', async () => {
    const r = await runCli(['status', 'nope', '--json'], env);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toContain("no run with id 'nope'");
  });
});
