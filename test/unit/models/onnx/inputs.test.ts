import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { describeModel, loadRunner, ModelInputError, singleFloatInput } from '../../../../src/models/index.js';
import type { ModelInputs, ModelRunner, ModelSpec } from '../../../../src/models/types.js';
import { maxAbsDiff, readNpy, removeTempDirs, tap, tempDir, TEXT_DIR, tokenInputs } from '../../../helpers/models.js';
import { buildOnnx, tinyAdd } from '../../../helpers/onnx.js';

// A BERT-style encoder with three int64 inputs and PyTorch forward-hook captures (see its README).
const TEXT_ONNX = path.join(TEXT_DIR, 'model.onnx');
const HIDDEN = 32;

interface Tokens {
  input_ids: number[][];
  lengths: number[];
}
const tokens = JSON.parse(readFileSync(path.join(TEXT_DIR, 'expected', 'tokens.json'), 'utf8')) as Tokens;

afterAll(removeTempDirs);

function spec(taps: ModelSpec['taps'], uri = TEXT_ONNX): ModelSpec {
  // inputShape is what image and tensor batches feed; a model fed by name does not use it
  return { uri, backend: 'onnx', taps, inputShape: [], fingerprint: `inputs-${taps.length}`, preprocess: null };
}

/** The real tokens of each row of a [rows, width, HIDDEN] output, rows one after another. */
function realTokens(values: Float32Array, lengths: number[], width: number): Float32Array {
  const out = new Float32Array(lengths.reduce((a, b) => a + b, 0) * HIDDEN);
  let at = 0;
  lengths.forEach((n, r) => {
    out.set(values.subarray(r * width * HIDDEN, (r * width + n) * HIDDEN), at);
    at += n * HIDDEN;
  });
  return out;
}

function spyOnRun() {
  return vi.spyOn((ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype, 'run');
}

describe('describing a model with several inputs', () => {
  it('lists the three int64 inputs with their symbolic axes, and the module paths to tap', async () => {
    const d = await describeModel(TEXT_ONNX);
    const text = { dtype: 'int64', dims: [null, null], dimNames: ['batch', 'sequence'] };
    expect(d.inputs).toEqual([
      { name: 'input_ids', ...text },
      { name: 'attention_mask', ...text },
      { name: 'token_type_ids', ...text },
    ]);
    expect(d.inputShape).toEqual([null, null]);
    for (const m of ['embeddings', 'encoder.layer.0', 'encoder.layer.1', 'encoder.layer.2', 'encoder.layer.3', 'pooler']) {
      expect(d.layerNames).toContain(m);
    }
  });
});

describe('an ONNX runner fed named int64 inputs', () => {
  let runner: ModelRunner;
  beforeAll(async () => {
    runner = await loadRunner(
      spec([tap('encoder.layer.3'), tap('pooler'), tap('embeddings'), tap('encoder.layer.1', 'output', { as: 'mean1', reduce: 'mean', axes: [1] })]),
    );
  });
  afterAll(async () => {
    await runner.dispose();
  });

  it('says which inputs it takes', () => {
    expect(runner.inputs.map((i) => `${i.name}:${i.dtype}`)).toEqual(['input_ids:int64', 'attention_mask:int64', 'token_type_ids:int64']);
  });

  it('runs two hand-made rows in one session.run and gives per-token and pooled shapes', async () => {
    const runSpy = spyOnRun();
    try {
      const out = await runner.run(
        tokenInputs([
          [2, 119, 135, 3],
          [2, 44, 3],
        ]),
      );
      expect(runSpy).toHaveBeenCalledTimes(1);
      expect(out['encoder.layer.3:output']?.shape).toEqual([4, HIDDEN]);
      expect(out['encoder.layer.3:output']?.data.length).toBe(2 * 4 * HIDDEN);
      expect(out['pooler:output']?.shape).toEqual([HIDDEN]);
      expect(out.mean1?.shape).toEqual([HIDDEN]);
    } finally {
      runSpy.mockRestore();
    }
  });

  it('matches the PyTorch hooks on the fixture sentences to 1e-5, in one batch and in batches of 3', async () => {
    const expectedTokens = readNpy(path.join(TEXT_DIR, 'expected', 'encoder.layer.3__tokens.npy'));
    const expectedPooler = readNpy(path.join(TEXT_DIR, 'expected', 'pooler__output.npy'));
    const expectedCls = readNpy(path.join(TEXT_DIR, 'expected', 'embeddings__cls.npy'));
    const rows = tokens.input_ids;
    expect(rows).toHaveLength(10);
    const errors: Record<string, number> = {};
    for (const size of [rows.length, 3]) {
      const layer3: Float32Array[] = [];
      const pooler: Float32Array[] = [];
      const cls: Float32Array[] = [];
      for (let s = 0; s < rows.length; s += size) {
        const batch = rows.slice(s, s + size);
        const width = Math.max(...batch.map((r) => r.length));
        const out = await runner.run(tokenInputs(batch));
        layer3.push(
          realTokens(
            out['encoder.layer.3:output']!.data as Float32Array,
            batch.map((r) => r.length),
            width,
          ),
        );
        pooler.push(out['pooler:output']!.data as Float32Array);
        const emb = out['embeddings:output']!.data as Float32Array;
        batch.forEach((_, r) => cls.push(emb.slice(r * width * HIDDEN, (r * width + 1) * HIDDEN)));
      }
      const join = (parts: Float32Array[]) => Float32Array.from(parts.flatMap((p) => Array.from(p)));
      errors[`tokens/${size}`] = maxAbsDiff(join(layer3), expectedTokens.data);
      errors[`pooler/${size}`] = maxAbsDiff(join(pooler), expectedPooler.data);
      errors[`cls/${size}`] = maxAbsDiff(join(cls), expectedCls.data);
    }
    console.log(`text model parity (max abs error): ${JSON.stringify(errors)}`);
    for (const [k, e] of Object.entries(errors)) expect(e, k).toBeLessThanOrEqual(1e-5);
  });

  it('refuses a missing or unknown input, the wrong dtype, wrong dims and rows that disagree, naming the input', async () => {
    const good = tokenInputs([
      [2, 5, 3],
      [2, 6, 3],
    ]);
    const failure = async (inputs: ModelInputs): Promise<ModelInputError> => {
      const err = await runner.run(inputs).catch((e: unknown) => e);
      if (!(err instanceof ModelInputError)) throw new Error(`expected a ModelInputError, got ${String(err)}`);
      return err;
    };
    const takes = `model ${TEXT_ONNX} takes input_ids: int64 [batch, sequence], attention_mask: int64 [batch, sequence], token_type_ids: int64 [batch, sequence]`;

    const { token_type_ids: _, ...missing } = good;
    const noTypes = await failure(missing);
    expect(noTypes.input).toBe('token_type_ids');
    expect(noTypes.message).toBe(`run(): input 'token_type_ids' is missing; ${takes}`);
    expect(noTypes.expected.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);

    const extra = await failure({ ...good, position_ids: good.token_type_ids! });
    expect(extra.message).toBe(`run(): 'position_ids' is not an input of the model; ${takes}`);

    const int32 = await failure({ ...good, input_ids: { dtype: 'int32', dims: [2, 3], data: Int32Array.from([2, 5, 3, 2, 6, 3]) } });
    expect(int32.input).toBe('input_ids');
    expect(int32.message).toBe("run(): input 'input_ids' is int32, but the model takes input_ids: int64 [batch, sequence]");

    const rank3 = await failure({ ...good, attention_mask: { dtype: 'int64', dims: [2, 3, 1], data: new BigInt64Array(6) } });
    expect(rank3.message).toBe("run(): input 'attention_mask' has dims [2, 3, 1], but the model takes attention_mask: int64 [batch, sequence]");

    const short = await failure({ ...good, attention_mask: { dtype: 'int64', dims: [2, 3], data: new BigInt64Array(5) } });
    expect(short.message).toBe("run(): input 'attention_mask' has dims [2, 3] (6 values) but holds 5 values");

    const oneRow = await failure({ ...good, token_type_ids: { dtype: 'int64', dims: [1, 3], data: new BigInt64Array(3) } });
    expect(oneRow.message).toBe("run(): inputs 'input_ids' and 'token_type_ids' have 2 and 1 rows; every input has the same rows");

    const mislabelled = await failure({ ...good, input_ids: { dtype: 'int64', dims: [2, 3], data: new Float32Array(6) } as unknown as ModelInputs[string] });
    expect(mislabelled.message).toBe("run(): input 'input_ids' is int64, so its data must be a BigInt64Array, not a Float32Array");
  });

  it('refuses a batch of images or tensor rows, which feed one float32 input', () => {
    expect(() => singleFloatInput(runner, new Float32Array(4), [4])).toThrow(
      'the model takes 3 inputs (input_ids: int64 [batch, sequence], attention_mask: int64 [batch, sequence], token_type_ids: int64 [batch, sequence]); a batch of images or tensor rows feeds one float32 input',
    );
  });
});

describe('several inputs of a graph exported with a fixed batch', () => {
  it('run in chunks of that batch, every input cut and padded alike, and a tap on an input gives its values', async () => {
    const dir = tempDir('layertap-onnx-inputs-');
    const file = path.join(dir, 'add.onnx');
    writeFileSync(file, buildOnnx(tinyAdd(2)));
    const runSpy = spyOnRun();
    const runner = await loadRunner(spec([tap('sum'), tap('y', 'output')], file));
    try {
      expect(runner.inputs).toEqual([
        { name: 'x', dtype: 'float32', dims: [2, 2] },
        { name: 'y', dtype: 'float32', dims: [2, 2] },
      ]);
      const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
      const y = Float32Array.from([10, 20, 30, 40, 50, 60]);
      const out = await runner.run({ x: { dtype: 'float32', dims: [3, 2], data: x }, y: { dtype: 'float32', dims: [3, 2], data: y } });
      // 3 rows through a batch-2 graph: two runs, the second padded
      expect(runSpy).toHaveBeenCalledTimes(2);
      expect(Array.from(out['sum:output']!.data)).toEqual([11, 22, 33, 44, 55, 66]);
      expect(Array.from(out['y:output']!.data)).toEqual(Array.from(y));
      expect(out['y:output']!.data).not.toBe(y);
    } finally {
      runSpy.mockRestore();
      await runner.dispose();
    }
  });
});
