import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRunner, singleFloatInput } from '../../../../src/models/index.js';
import { float32ToFloat16, float16ToFloat32 } from '../../../../src/types/index.js';
import type { ModelRunner, TapOutput } from '../../../../src/models/types.js';
import { expected, maxAbsDiff, readNpy, SEED_DIR, SEED_MODEL, tap } from '../../../helpers/models.js';

const input = readNpy(path.join(SEED_DIR, 'input_nhwc.npy'));
const ROWS = 3;

/** Per-channel mean and max over H and W of an NCHW reference. */
function poolNchw(data: Float32Array, n: number, c: number, hw: number): { mean: Float32Array; max: Float32Array } {
  const mean = new Float32Array(n * c);
  const max = new Float32Array(n * c).fill(-Infinity);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let i = 0; i < hw; i++) {
        const v = data[(b * c + ch) * hw + i] ?? NaN;
        sum += v;
        max[b * c + ch] = Math.max(max[b * c + ch] ?? -Infinity, v);
      }
      mean[b * c + ch] = sum / hw;
    }
  return { mean, max };
}

function l2Rows(data: ArrayLike<number>, rows: number): Float32Array {
  const size = data.length / rows;
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let i = 0; i < size; i++) sq += (data[r * size + i] ?? 0) ** 2;
    const norm = Math.sqrt(sq);
    for (let i = 0; i < size; i++) out[r * size + i] = (data[r * size + i] ?? 0) / norm;
  }
  return out;
}

function f32(out: TapOutput | undefined): Float32Array {
  if (!(out?.data instanceof Float32Array)) throw new Error('expected float32 data');
  return out.data;
}

describe('tap post-processing on the seed model', () => {
  let runner: ModelRunner;
  let out: Record<string, TapOutput>;

  beforeAll(async () => {
    runner = await loadRunner({
      uri: SEED_MODEL,
      backend: 'cpu',
      taps: [
        tap('conv_16.2', 'output', { as: 'pool_mean', reduce: 'mean' }),
        tap('conv_16.2', 'output', { as: 'pool_max', reduce: 'max' }),
        tap('conv_32.1', 'output', { as: 'mean_l2', reduce: 'mean', normalize: 'l2' }),
        tap('linear_1.1', 'output', { as: 'hidden_l2', normalize: 'l2' }),
        tap('linear_1.1', 'output', { as: 'hidden_mean', reduce: 'mean' }),
        tap('linear_class.0', 'input', { as: 'hidden_f32' }),
        tap('linear_class.0', 'input', { as: 'hidden_f16', dtype: 'float16' }),
        tap('conv_16.2', 'output', { as: 'pool_f16_l2', reduce: 'max', normalize: 'l2', dtype: 'float16' }),
      ],
      inputShape: [28, 28, 1],
      fingerprint: 'test',
      preprocess: null,
    });
    out = await runner.run(singleFloatInput(runner, input.data, [28, 28, 1]));
  });
  afterAll(async () => {
    await runner.dispose();
  });

  it('reduce mean/max pool the spatial axes of an NHWC conv output to one value per channel', () => {
    const ref = expected('conv_16.2', 'output'); // [3, 16, 13, 13]
    const { mean, max } = poolNchw(ref.data, 3, 16, 13 * 13);
    expect(out.pool_mean?.shape).toEqual([16]);
    expect(out.pool_max?.shape).toEqual([16]);
    expect(maxAbsDiff(f32(out.pool_mean), mean)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(f32(out.pool_max), max)).toBeLessThanOrEqual(1e-5);
  });

  it('l2 normalizes each row after reducing', () => {
    const ref = expected('conv_32.1', 'output'); // [3, 32, 11, 11]
    const { mean } = poolNchw(ref.data, 3, 32, 11 * 11);
    expect(out.mean_l2?.shape).toEqual([32]);
    expect(maxAbsDiff(f32(out.mean_l2), l2Rows(mean, 3))).toBeLessThanOrEqual(1e-5);
  });

  it('l2 normalizes [N, C] rows to unit length', () => {
    const ref = expected('linear_1.1', 'output');
    const got = f32(out.hidden_l2);
    expect(maxAbsDiff(got, l2Rows(ref.data, 3))).toBeLessThanOrEqual(1e-5);
    for (let r = 0; r < 3; r++) {
      const norm = Math.hypot(...got.subarray(r * 64, (r + 1) * 64));
      expect(norm).toBeCloseTo(1, 5);
    }
  });

  it('reduce on a 2-d [N, C] output has nothing to pool', () => {
    expect(out.hidden_mean?.shape).toEqual([64]);
    expect(maxAbsDiff(f32(out.hidden_mean), expected('linear_1.1', 'output').data)).toBeLessThanOrEqual(1e-5);
  });

  it('float16 is the IEEE half of the float32 feature, bit for bit', () => {
    const bits = out.hidden_f16?.data;
    expect(bits).toBeInstanceOf(Uint16Array);
    expect(out.hidden_f16?.shape).toEqual([64]);
    const full = f32(out.hidden_f32);
    expect(Array.from(bits ?? [])).toEqual(Array.from(full, float32ToFloat16));
    // and within half precision of the PyTorch capture
    const ref = expected('linear_class.0', 'input').data;
    ref.forEach((v, i) => {
      expect(Math.abs(float16ToFloat32(bits?.[i] ?? NaN) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 1e-7);
    });
  });

  it('combines max, l2 and float16', () => {
    const { max } = poolNchw(expected('conv_16.2', 'output').data, 3, 16, 13 * 13);
    const want = l2Rows(max, 3);
    const bits = out.pool_f16_l2?.data as Uint16Array;
    expect(bits).toBeInstanceOf(Uint16Array);
    bits.forEach((b, i) => expect(Math.abs(float16ToFloat32(b) - (want[i] ?? NaN))).toBeLessThanOrEqual(2 ** -11));
  });

  it('returns buffers it owns, ready to transfer', () => {
    for (const o of Object.values(out)) {
      expect(o.data.byteOffset).toBe(0);
      expect(o.data.byteLength).toBe(o.data.buffer.byteLength);
      expect(o.data.length).toBe(ROWS * o.shape.reduce((a, b) => a * b, 1));
    }
  });
});

describe('tensor memory', () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    it(`holds the tensor count flat across batches and frees everything on dispose (${backend})`, async () => {
      // load tfjs and the backend first so that their own one-off tensors do not count
      const warm = await loadRunner({
        uri: SEED_MODEL,
        backend,
        taps: [tap('linear_1.1')],
        inputShape: [28, 28, 1],
        fingerprint: 'warm',
        preprocess: null,
      });
      await warm.dispose();
      const beforeLoad = tf.memory().numTensors;

      const runner = await loadRunner({
        uri: SEED_MODEL,
        backend,
        taps: [
          tap('conv_16.0', 'input'),
          tap('conv_16.2', 'output', { reduce: 'mean', normalize: 'l2' }),
          tap('linear_class.0', 'input', { dtype: 'float16' }),
          tap('linear_1.1', 'output', { as: 'same_tensor_again' }),
        ],
        inputShape: [28, 28, 1],
        fingerprint: 'test',
        preprocess: null,
      });
      await runner.run(singleFloatInput(runner, input.data, [28, 28, 1]));
      const afterFirst = tf.memory().numTensors;
      // the weights live in the same tfjs engine this test reads, so the count is a real one
      expect(afterFirst).toBeGreaterThan(beforeLoad);
      for (let i = 0; i < 5; i++) await runner.run(singleFloatInput(runner, input.data, [28, 28, 1]));
      await runner.run(singleFloatInput(runner, input.data.slice(0, 28 * 28), [28, 28, 1]));
      expect(tf.memory().numTensors).toBe(afterFirst);
      const short = { input: { dtype: 'float32' as const, dims: [1, 28, 28, 1], data: new Float32Array(10) } };
      await expect(runner.run(short)).rejects.toThrow("run(): input 'input' has dims [1, 28, 28, 1] (784 values) but holds 10 values");
      expect(tf.memory().numTensors).toBe(afterFirst);
      await runner.dispose();
      expect(tf.memory().numTensors).toBe(beforeLoad);
    });
  }
});
