import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRunner, singleFloatInput } from '../../../../src/models/index.js';
import type { ModelRunner, TapOutput } from '../../../../src/models/types.js';
import { SEED_LEAVES } from '../../../helpers/index.js';
import { expected, maxAbsDiff, nhwcToNchw, readNpy, SEED_DIR, SEED_MODEL, tap } from '../../../helpers/models.js';

const input = readNpy(path.join(SEED_DIR, 'input_nhwc.npy'));
const ROWS = 3;

const ALL_LAYERS = SEED_LEAVES;

/** The tap's values in PyTorch layout: NCHW for 4-d, as they are for [N, C]. */
function asTorch(out: TapOutput): Float32Array {
  const data = out.data as Float32Array;
  if (out.shape.length !== 3) return data;
  const [h, w, c] = out.shape as [number, number, number];
  return nhwcToNchw(data, ROWS, h, w, c);
}

function compare(out: TapOutput | undefined, layer: string, at: 'input' | 'output'): number {
  if (out === undefined) throw new Error(`no output for ${layer} at ${at}`);
  const ref = expected(layer, at);
  // PyTorch keeps GlobalAveragePooling's 1x1 spatial axes ([N,32,1,1]); the Keras layer drops them
  const refPerRow = ref.data.length / ROWS;
  expect(out.data.length).toBe(ref.data.length);
  expect(out.shape.reduce((a, b) => a * b, 1)).toBe(refPerRow);
  return maxAbsDiff(asTorch(out), ref.data);
}

describe('seed model parity with PyTorch forward hooks', () => {
  it('taps linear_class.0 at input, linear_1.1 and conv_16.2 at output in one pass', async () => {
    const runner = await loadRunner({
      uri: SEED_MODEL,
      backend: 'cpu',
      taps: [tap('linear_class.0', 'input'), tap('linear_1.1', 'output'), tap('conv_16.2', 'output')],
      inputShape: [28, 28, 1],
      fingerprint: 'test',
      preprocess: null,
    });
    try {
      const out = await runner.run(singleFloatInput(runner, input.data, [28, 28, 1]));
      expect(out['conv_16.2:output']?.shape).toEqual([13, 13, 16]);
      expect(out['linear_1.1:output']?.shape).toEqual([64]);
      expect(out['linear_class.0:input']?.shape).toEqual([64]);
      const errors = {
        'linear_class.0:input': compare(out['linear_class.0:input'], 'linear_class.0', 'input'),
        'linear_1.1:output': compare(out['linear_1.1:output'], 'linear_1.1', 'output'),
        'conv_16.2:output': compare(out['conv_16.2:output'], 'conv_16.2', 'output'),
      };
      console.log(`seed parity (3 taps, cpu) max abs error: ${JSON.stringify(errors)}`);
      for (const e of Object.values(errors)) expect(e).toBeLessThanOrEqual(1e-5);
    } finally {
      await runner.dispose();
    }
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    describe(`every layer at output and at input, one runner (${backend})`, () => {
      let runner: ModelRunner;
      beforeAll(async () => {
        runner = await loadRunner({
          uri: SEED_MODEL,
          backend,
          taps: ALL_LAYERS.flatMap((l) => [tap(l, 'output'), tap(l, 'input')]),
          inputShape: [28, 28, 1],
          fingerprint: 'test',
          preprocess: null,
        });
      });
      afterAll(async () => {
        await runner.dispose();
      });

      it('matches every hook capture to 1e-5', async () => {
        expect(runner.backend).toBe(backend);
        expect(runner.layout).toBe('nhwc');
        const out = await runner.run(singleFloatInput(runner, input.data, [28, 28, 1]));
        const errors: Record<string, number> = {};
        for (const layer of ALL_LAYERS) {
          for (const at of ['output', 'input'] as const) errors[`${layer}:${at}`] = compare(out[`${layer}:${at}`], layer, at);
        }
        const worst = Math.max(...Object.values(errors));
        console.log(
          `seed parity (all ${ALL_LAYERS.length} layers x input/output, ${backend}) max abs error ${worst.toExponential(2)}: ${JSON.stringify(errors)}`,
        );
        for (const [key, e] of Object.entries(errors)) expect(e, key).toBeLessThanOrEqual(1e-5);
      });

      it('gives the same features for a row whether it runs alone or in a batch', async () => {
        const all = await runner.run(singleFloatInput(runner, input.data, [28, 28, 1]));
        const perRow = input.data.length / ROWS;
        const second = await runner.run(singleFloatInput(runner, input.data.slice(perRow, 2 * perRow), [28, 28, 1]));
        const batched = all['linear_class.0:input']?.data as Float32Array;
        const alone = second['linear_class.0:input']?.data as Float32Array;
        expect(maxAbsDiff(alone, batched.subarray(64, 128))).toBeLessThanOrEqual(1e-6);
      });
    });
  }
});
