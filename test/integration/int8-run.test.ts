import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobConfigError, parseJob, type JobInput } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { runJob } from '../../src/queue/index.js';
import type { PrecisionReport } from '../../src/config/resolved.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { writeNpy } from '../../src/sources/npy.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { configError, TEXT_DIR } from '../helpers/models.js';

// model.precision: int8 on the text fixture, end to end: the fingerprint, the price in the
// manifest (checked against cosines computed here from an fp32 run of the same rows), and the
// refusal of a run below model.minCosine.

const SENTENCES = join(TEXT_DIR, 'sentences.jsonl');
const ROWS = 10;

describe('int8 runs', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };

  const job = (model: Partial<JobInput['model']> = {}, over: Partial<JobInput> = {}): JobInput => ({
    name: 'int8',
    source: { uri: SENTENCES },
    model: { uri: join(tmp.dir, 'model', 'model.onnx'), ...model },
    // every row in one batch: the run and the sample batch the same rows together
    batchSize: 16,
    taps: [
      { layer: 'encoder.layer.3', reduce: 'mean' },
      { layer: 'pooler' },
      { layer: 'pooler', dtype: 'float16', as: 'pooler16' },
      { layer: 'encoder.layer.1', reduce: 'none', as: 'tokens' },
    ],
    sink: { uri: join(tmp.dir, 'out') },
    ...over,
  });

  beforeAll(async () => {
    tmp = await tempDir();
    await writeNpy(join(tmp.dir, 'rows.npy'), new Float32Array(2 * 28 * 28), [2, 28, 28, 1]);
    // the model in a folder of the test's own: the int8 cache goes beside it, not into the fixtures
    await mkdir(join(tmp.dir, 'model'));
    for (const f of ['model.onnx', 'tokenizer.json', 'tokenizer_config.json']) await copyFile(join(TEXT_DIR, f), join(tmp.dir, 'model', f));
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('puts the precision in the fingerprint (fp32 fingerprints unchanged) and takes int8 for ONNX models only', async () => {
    const [plain, fp32, int8] = await Promise.all([
      resolveJob(parseJob(job())),
      resolveJob(parseJob(job({ precision: 'fp32' }))),
      resolveJob(parseJob(job({ precision: 'int8' }))),
    ]);
    expect(fp32.fingerprint).toBe(plain.fingerprint);
    expect(int8.fingerprint).not.toBe(fp32.fingerprint);
    expect(int8.model).toMatchObject({ precision: 'int8', precisionSample: 256 });
    expect(fp32.model.precision).toBeUndefined();

    const tfjs = await configError({
      name: 'seed',
      source: { uri: join(tmp.dir, 'rows.npy') },
      model: { uri: SEED_MODEL, precision: 'int8' },
      taps: [{ layer: 'linear_1.1' }],
      sink: { uri: join(tmp.dir, 'out') },
    });
    expect(tfjs.message).toBe('model.precision: int8 runs ONNX models only; this model is tfjs-layers (choices for it: fp32)');
    expect((await configError(job({ minCosine: 0.99 }))).message).toBe('model.minCosine: applies to model.precision: int8 only (the run is fp32)');
  });

  it('records per tap the cosine to fp32 of the first rows, as computed here from an fp32 run of the same rows', async () => {
    // int8 quantizes activations per batch, so the run must batch the rows as the sample did: all
    // ten in one batch (one thread; with two, the shard is cut into two batches of five)
    const fp32 = await runJob(parseJob(job()), { settings, threads: 1 });
    const int8 = await runJob(parseJob(job({ precision: 'int8' })), { settings, threads: 1 });
    expect(fp32.status).toBe('committed');
    expect(int8.status).toBe('committed');
    expect(int8.fingerprint).not.toBe(fp32.fingerprint);
    const manifest = JSON.parse(await readFile(int8.output.manifest!, 'utf8')) as { precision: PrecisionReport; model: Record<string, unknown> };
    expect(manifest.model).toMatchObject({ precision: 'int8', precisionSample: 256 });
    expect(int8.precision).toEqual(manifest.precision);
    const p = manifest.precision;
    expect(p.mode).toBe('int8');
    expect(p.sample).toBe(ROWS);
    expect(Object.keys(p.taps).sort()).toEqual(['encoder_layer_3', 'pooler', 'pooler16', 'tokens']);

    const [a, b] = [await readPartFile(fp32.output.files[0]!), await readPartFile(int8.output.files[0]!)];
    const ids = [...a.getChild('id')!].map(String);
    expect([...b.getChild('id')!].map(String)).toEqual(ids);
    for (const col of ['encoder_layer_3', 'pooler', 'pooler16', 'tokens']) {
      // per row; for the ragged column, per token
      const items = (t: typeof a): number[][] =>
        [...t.getChild(col)!].flatMap((v) => {
          const row = [...(v as Iterable<unknown>)];
          return typeof row[0] === 'number' ? [row as number[]] : row.map((tok) => [...(tok as Iterable<number>)]);
        });
      const [x, y] = [items(a), items(b)];
      expect(y).toHaveLength(x.length);
      const cos = x.map((r, i) => {
        const s = y[i]!;
        let dot = 0;
        let na = 0;
        let nb = 0;
        r.forEach((v, k) => {
          dot += v * s[k]!;
          na += v * v;
          nb += s[k]! * s[k]!;
        });
        return dot / Math.sqrt(na * nb);
      });
      const maxAbs = Math.max(...x.flatMap((r, i) => r.map((v, k) => Math.abs(v - y[i]![k]!))));
      const f = p.taps[col]!;
      expect(f.meanCosine).toBeCloseTo(cos.reduce((s, c) => s + c, 0) / cos.length, 5);
      expect(f.minCosine).toBeCloseTo(Math.min(...cos), 5);
      expect(f.maxAbsDiff).toBeCloseTo(maxAbs, 4);
      expect(f.minCosine).toBeGreaterThanOrEqual(0.99);
      expect(f.maxAbsDiff).toBeGreaterThan(0);
    }
  });

  it('refuses a run whose sample falls below model.minCosine: exit 2, one line naming the tap and the figure, nothing written', async () => {
    const out = join(tmp.dir, 'refused');
    const file = join(tmp.dir, 'strict.json');
    const strict = job({ precision: 'int8', minCosine: 0.9999999, precisionSample: 4 }, { sink: { uri: out } });
    await writeFile(file, JSON.stringify(strict));
    const r = await runCli(['run', file], { REDIS_URL, LAYERTAP_PREFIX: prefix });
    expect(r.code, r.stderr).toBe(2);
    const line = r.stderr.split('\n').find((l) => l.startsWith('layertap: '));
    expect(line).toMatch(
      /^layertap: model\.minCosine: tap '(encoder_layer_3|pooler|pooler16|tokens)' has mean cosine 0\.\d{5} to fp32 on the first 4 rows \(lowest row 0\.\d{5}\), below 0\.9999999; the run was not started$/,
    );
    // the figure printed before it names the same tap with the same mean
    const [, tap, mean] = /tap '(\w+)' has mean cosine (0\.\d{5})/.exec(line!)!;
    expect(r.stderr).toContain(`${tap} mean ${mean}`);
    expect(r.stderr).toContain('int8: cosine to fp32 on the first 4 rows: ');
    expect(existsSync(out)).toBe(false);
    // a run that passes prints the figure at its end too, per tap
    const ok = join(tmp.dir, 'ok.json');
    await writeFile(ok, JSON.stringify(job({ precision: 'int8', minCosine: 0.99, precisionSample: 4 }, { sink: { uri: join(tmp.dir, 'ok-out') } })));
    const passed = await runCli(['run', ok], { REDIS_URL, LAYERTAP_PREFIX: prefix });
    expect(passed.code, passed.stderr).toBe(0);
    for (const col of ['encoder_layer_3', 'pooler', 'pooler16', 'tokens']) {
      expect(passed.stdout).toMatch(new RegExp(`\\n  int8        ${col}: mean cosine 0\\.\\d{5} to fp32 on the first 4 rows \\(lowest 0\\.\\d{5}\\)\\n`));
    }
    // the library says the same with a JobConfigError naming the field
    const err = await runJob(parseJob(strict), { settings }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobConfigError);
    expect((err as JobConfigError).fields).toEqual(['model.minCosine']);
  });
});
