import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ResolvedTap } from '../../../../src/config/resolved.js';
import { loadRunner, UnknownLayerError } from '../../../../src/models/index.js';
import { float16ToFloat32 } from '../../../../src/types/index.js';
import { IMAGE_SLICE_VALUES, imageSliceRows } from '../../../../src/models/onnx/runner.js';
import { defaultIntraOpThreads } from '../../../../src/models/onnx/session.js';
import type { ModelInputs, ModelRunner, ModelSpec, TapOutput } from '../../../../src/models/types.js';
import { expected, maxAbsDiff, readNpy, removeTempDirs, SEED_DIR, tap, tempDir } from '../../../helpers/models.js';
import { buildOnnx, copySeedOnnx, flipWeightBit, SEED_LEAVES, SEED_ONNX, tinyLinear, tinyMatMul } from '../../../helpers/onnx.js';

// the PyTorch captures are NCHW already, as is everything the ONNX runtime returns
const input = readNpy(path.join(SEED_DIR, 'input_nchw.npy'));
const ROWS = 3;

/** The seed model's named input for rows of [1, 28, 28]. */
function feed(data: Float32Array, rows = data.length / 784): ModelInputs {
  return { input: { dtype: 'float32', dims: [rows, 1, 28, 28], data } };
}

function spec(taps: ResolvedTap[], extra: Partial<ModelSpec> = {}): ModelSpec {
  return { uri: SEED_ONNX, backend: 'onnx', taps, inputShape: [1, 28, 28], fingerprint: 'test', preprocess: null, ...extra };
}

function compare(out: TapOutput | undefined, layer: string, at: 'input' | 'output'): number {
  if (out === undefined) throw new Error(`no output for ${layer} at ${at}`);
  const ref = expected(layer, at);
  expect(out.shape).toEqual(ref.shape.slice(1));
  return maxAbsDiff(out.data, ref.data);
}

afterAll(removeTempDirs);

/** Count session.run calls (the runner's sessions are InferenceSession instances; the typings hide the class). */
function spyOnRun() {
  return vi.spyOn((ort.InferenceSession as unknown as { prototype: ort.InferenceSession }).prototype, 'run');
}

describe('ONNX seed model parity with PyTorch forward hooks', () => {
  it('taps linear_class.0 at input, linear_1.1 and conv_16.2 at output in one session.run', async () => {
    const runSpy = spyOnRun();
    const runner = await loadRunner(spec([tap('linear_class.0', 'input'), tap('linear_1.1', 'output'), tap('conv_16.2', 'output')]));
    try {
      expect(runner.backend).toBe('onnx');
      expect(runner.layout).toBe('nchw');
      const out = await runner.run(feed(input.data));
      expect(runSpy).toHaveBeenCalledTimes(1);
      expect(out['conv_16.2:output']?.shape).toEqual([16, 13, 13]);
      const errors = {
        'linear_class.0:input': compare(out['linear_class.0:input'], 'linear_class.0', 'input'),
        'linear_1.1:output': compare(out['linear_1.1:output'], 'linear_1.1', 'output'),
        'conv_16.2:output': compare(out['conv_16.2:output'], 'conv_16.2', 'output'),
      };
      console.log(`ONNX seed parity (3 taps) max abs error: ${JSON.stringify(errors)}`);
      for (const e of Object.values(errors)) expect(e).toBeLessThanOrEqual(1e-5);
    } finally {
      runSpy.mockRestore();
      await runner.dispose();
    }
  });

  describe('every leaf module at input and at output, one runner', () => {
    let runner: ModelRunner;
    beforeAll(async () => {
      runner = await loadRunner(spec(SEED_LEAVES.flatMap((l) => [tap(l, 'output'), tap(l, 'input')])));
    });
    afterAll(async () => {
      await runner.dispose();
    });

    it('matches every hook capture to 1e-5, for a batch of 3 and row by row', async () => {
      const out = await runner.run(feed(input.data));
      let worst = 0;
      for (const layer of SEED_LEAVES) {
        for (const at of ['input', 'output'] as const) {
          const err = compare(out[`${layer}:${at}`], layer, at);
          expect(err, `${layer} at ${at}`).toBeLessThanOrEqual(1e-5);
          worst = Math.max(worst, err);
        }
      }
      console.log(`ONNX seed parity (every leaf module, input and output): max abs error ${worst.toExponential(2)}`);
      const per = input.data.length / ROWS;
      const single = await runner.run(feed(input.data.slice(per, 2 * per)));
      const ref = expected('linear_class.0', 'input');
      expect(maxAbsDiff(single['linear_class.0:input']!.data, ref.data.subarray(64, 128))).toBeLessThanOrEqual(1e-5);
    });

    it("returns the fed input for a tap on the model's input, as a copy", async () => {
      const x = input.data.slice();
      const out = await runner.run(feed(x));
      const fed = out['conv_16.0:input']!;
      expect(fed.data).toEqual(x);
      expect(fed.data).not.toBe(x);
    });
  });

  it('reduces NCHW over the spatial axes (channels stay), normalizes and converts to float16', async () => {
    const runner = await loadRunner(
      spec([
        tap('conv_16.2', 'output', { as: 'mean', reduce: 'mean' }),
        tap('conv_16.2', 'output', { as: 'max', reduce: 'max', normalize: 'l2' }),
        tap('linear_class.0', 'input', { as: 'half', dtype: 'float16' }),
      ]),
    );
    try {
      const out = await runner.run(feed(input.data));
      const ref = expected('conv_16.2', 'output'); // [3, 16, 13, 13]
      const mean = new Float32Array(ROWS * 16);
      const max = new Float32Array(ROWS * 16);
      for (let r = 0; r < ROWS; r++) {
        for (let c = 0; c < 16; c++) {
          const plane = ref.data.subarray((r * 16 + c) * 169, (r * 16 + c + 1) * 169);
          mean[r * 16 + c] = plane.reduce((a, b) => a + b, 0) / 169;
          max[r * 16 + c] = Math.max(...plane);
        }
        const norm = Math.hypot(...max.subarray(r * 16, (r + 1) * 16));
        for (let c = 0; c < 16; c++) max[r * 16 + c]! /= norm;
      }
      expect(out.mean?.shape).toEqual([16]);
      expect(maxAbsDiff(out.mean!.data, mean)).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(out.max!.data, max)).toBeLessThanOrEqual(1e-5);
      const half = out.half!;
      expect(half.data).toBeInstanceOf(Uint16Array);
      const hidden = expected('linear_class.0', 'input').data;
      expect(maxAbsDiff(Array.from(half.data, float16ToFloat32), hidden)).toBeLessThanOrEqual(2e-3);
    } finally {
      await runner.dispose();
    }
  });

  it('runs a batch larger than an image slice in slices, each row the same as the hook saw', async () => {
    // 784 values a row: slices of 1536 rows, so 1800 rows run as 1536 and 264
    const slice = imageSliceRows([{ name: 'input', dtype: 'float32', dims: [null, 1, 28, 28] }], [1, 28, 28]);
    expect(slice).toBe(Math.floor(IMAGE_SLICE_VALUES / 784));
    expect(slice).toBe(1536);
    const copies = 600;
    const big = new Float32Array(copies * input.data.length);
    for (let c = 0; c < copies; c++) big.set(input.data, c * input.data.length);
    const runSpy = spyOnRun();
    const runner = await loadRunner(spec([tap('conv_16.0', 'output'), tap('linear_class.0', 'input')]));
    try {
      const out = await runner.run(feed(big));
      expect(runSpy).toHaveBeenCalledTimes(2);
      for (const [layer, at] of [
        ['conv_16.0', 'output'],
        ['linear_class.0', 'input'],
      ] as const) {
        const got = out[`${layer}:${at}`]!;
        const ref = expected(layer, at);
        expect(got.shape).toEqual(ref.shape.slice(1));
        expect(got.data.length).toBe(copies * ref.data.length);
        // every copy of the 3 rows, on both sides of the slice boundary (row 1536 is copy 512's first)
        let worst = 0;
        for (let c = 0; c < copies; c++) worst = Math.max(worst, maxAbsDiff(got.data.subarray(c * ref.data.length, (c + 1) * ref.data.length), ref.data));
        expect(worst, `${layer} at ${at}`).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      runSpy.mockRestore();
      await runner.dispose();
    }
  });

  it('slices only a float32 input of rank 4 or more with a free batch axis', () => {
    expect(imageSliceRows([{ name: 'pixel_values', dtype: 'float32', dims: [null, 3, 224, 224] }], [3, 224, 224])).toBe(8);
    expect(imageSliceRows([{ name: 'x', dtype: 'float32', dims: [null, 3, 1024, 1024] }], [3, 1024, 1024])).toBe(1);
    // tensor rows and text run their batch whole
    expect(imageSliceRows([{ name: 'x', dtype: 'float32', dims: [null, 512] }], [512])).toBeNull();
    expect(
      imageSliceRows(
        [
          { name: 'input_ids', dtype: 'int64', dims: [null, null] },
          { name: 'attention_mask', dtype: 'int64', dims: [null, null] },
        ],
        [],
      ),
    ).toBeNull();
    expect(imageSliceRows([{ name: 'x', dtype: 'float32', dims: null }], [3, 224, 224])).toBeNull();
  });

  it('gives different features once a weight changes', async () => {
    const copy = copySeedOnnx();
    flipWeightBit(copy);
    const runner = await loadRunner(spec([tap('conv_32.0', 'output')], { uri: copy }));
    try {
      const out = await runner.run(feed(input.data));
      const err = maxAbsDiff(out['conv_32.0:output']!.data, expected('conv_32.0', 'output').data);
      expect(err).toBeGreaterThan(0);
      expect(err).toBeLessThan(1e-2);
    } finally {
      await runner.dispose();
    }
  });
});

describe('ONNX runner errors and options', () => {
  it('names the nearest module paths for a tap on one that does not exist', async () => {
    const err = await loadRunner(spec([tap('linear_1.3')])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownLayerError);
    expect((err as Error).message).toMatch(
      /^unknown layer 'linear_1\.3' \(did you mean 'linear_1\.0' or 'linear_1\.1' or 'linear_1'\?\); layers are: conv_16, conv_16\.0,/,
    );
  });

  it('refuses rows of the wrong shape, a TF.js backend, and a disposed runner', async () => {
    await expect(loadRunner(spec([tap('linear_1.1')], { inputShape: [28, 28, 1] }))).rejects.toThrow(
      `model ${SEED_ONNX} takes rows of shape [1, 28, 28], but the job feeds [28, 28, 1]`,
    );
    await expect(loadRunner(spec([tap('linear_1.1')], { backend: 'wasm' }))).rejects.toThrow("backend 'wasm' runs TF.js models; ");
    const runner = await loadRunner(spec([tap('linear_1.1')], { backend: 'auto', intraOpThreads: 1 }));
    await expect(runner.run(feed(input.data, 2))).rejects.toThrow("run(): input 'input' has dims [2, 1, 28, 28] (1568 values) but holds 2352 values");
    await expect(runner.run({ input: { dtype: 'float32', dims: [3, 28, 28, 1], data: input.data } })).rejects.toThrow(
      "run(): input 'input' has dims [3, 28, 28, 1], but the model takes input: float32 [n, 1, 28, 28]",
    );
    await expect(runner.run({ image: { dtype: 'float32', dims: [3, 1, 28, 28], data: input.data } })).rejects.toThrow(
      "run(): 'image' is not an input of the model; model " + SEED_ONNX + ' takes input: float32 [n, 1, 28, 28]',
    );
    await runner.dispose();
    await expect(runner.run(feed(input.data))).rejects.toThrow('disposed');
  });

  it('shares the cores among pool threads by default', () => {
    expect(defaultIntraOpThreads(8, 2)).toBe(4);
    expect(defaultIntraOpThreads(2, 2)).toBe(1);
    expect(defaultIntraOpThreads(2, 4)).toBe(1);
    expect(defaultIntraOpThreads(6, 1)).toBe(6);
  });

  it('loads external data, and runs a graph exported with a fixed batch in chunks of that batch', async () => {
    const dir = tempDir('layertap-onnx-run-');
    const file = path.join(dir, 'fixed.onnx');
    writeFileSync(file, buildOnnx(tinyLinear({ batch: 2, external: 'fixed.weights' }), dir));
    const x = [
      [1, 2],
      [-1, 0.5],
      [3, -2],
    ];
    const runSpy = spyOnRun();
    const runner = await loadRunner({
      uri: file,
      backend: 'onnx',
      taps: [tap('lin', 'output'), tap('act', 'output'), tap('lin', 'input')],
      inputShape: [2],
      fingerprint: 'test',
      preprocess: null,
    });
    try {
      const out = await runner.run({ x: { dtype: 'float32', dims: [3, 2], data: Float32Array.from(x.flat()) } });
      // 3 rows through a batch-2 graph: two runs, the second padded
      expect(runSpy).toHaveBeenCalledTimes(2);
      const pre = tinyMatMul(x);
      expect(Array.from(out['lin:output']!.data)).toEqual(pre.flat());
      expect(Array.from(out['act:output']!.data)).toEqual(pre.flat().map((v) => Math.max(0, v)));
      expect(Array.from(out['lin:input']!.data)).toEqual(x.flat());
    } finally {
      runSpy.mockRestore();
      await runner.dispose();
    }
  });
});
