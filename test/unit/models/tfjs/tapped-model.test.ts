import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { describeModel, listLayers, loadRunner, singleFloatInput, UnknownLayerError } from '../../../../src/models/index.js';
import { maxAbsDiff, removeTempDirs, tap, tempDir } from '../../../helpers/models.js';

afterAll(removeTempDirs);

const IN = 4;
const OUT = 3;
// fixed weights, so that expected values are computed here by hand
const W = Float32Array.from({ length: IN * OUT }, (_, i) => ((i * 7) % 11) / 5 - 1);
const B = Float32Array.from([0.5, -0.25, 0.125]);

const f32 = (dt = 'DT_FLOAT') => ({ type: dt });
const shape = (...dims: number[]) => ({ dim: dims.map((d) => ({ size: String(d) })) });

/** A GraphModel computing relu(x @ W + b) on [N, 4] rows, written as the converter would. */
function writeGraphModel(extra: object[] = []): string {
  const dir = tempDir('layertap-graph-');
  const nodes = [
    ...extra,
    { name: 'x', op: 'Placeholder', attr: { dtype: f32(), shape: { shape: shape(-1, IN) } } },
    { name: 'dense/kernel', op: 'Const', attr: { dtype: f32(), value: { tensor: { dtype: 'DT_FLOAT', tensorShape: shape(IN, OUT) } } } },
    { name: 'dense/bias', op: 'Const', attr: { dtype: f32(), value: { tensor: { dtype: 'DT_FLOAT', tensorShape: shape(OUT) } } } },
    { name: 'dense/MatMul', op: 'MatMul', input: ['x', 'dense/kernel'], attr: { T: f32(), transpose_a: { b: false }, transpose_b: { b: false } } },
    { name: 'dense/BiasAdd', op: 'BiasAdd', input: ['dense/MatMul', 'dense/bias'], attr: { T: f32() } },
    { name: 'dense/Relu', op: 'Relu', input: ['dense/BiasAdd', '^dense/bias'], attr: { T: f32() } },
    { name: 'Identity', op: 'Identity', input: ['dense/Relu'], attr: { T: f32() } },
  ];
  const json = {
    format: 'graph-model',
    generatedBy: 'test',
    convertedBy: 'test',
    modelTopology: { node: nodes, library: {}, versions: { producer: 1 } },
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'dense/kernel', shape: [IN, OUT], dtype: 'float32' },
          { name: 'dense/bias', shape: [OUT], dtype: 'float32' },
        ],
      },
    ],
  };
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  const weights = new Float32Array([...W, ...B]);
  writeFileSync(path.join(dir, 'group1-shard1of1.bin'), new Uint8Array(weights.buffer));
  return path.join(dir, 'model.json');
}

function reference(x: Float32Array, rows: number): { pre: Float32Array; out: Float32Array } {
  const pre = new Float32Array(rows * OUT);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < OUT; o++) {
      let s = B[o] ?? 0;
      for (let i = 0; i < IN; i++) s += (x[r * IN + i] ?? 0) * (W[i * OUT + o] ?? 0);
      pre[r * OUT + o] = s;
    }
  return { pre, out: pre.map((v) => Math.max(v, 0)) };
}

describe('GraphModel taps', () => {
  it('describes a graph model from its nodes', async () => {
    const modelJson = writeGraphModel();
    const d = await describeModel(modelJson);
    expect(d.format).toBe('tfjs-graph');
    expect(d.inputShape).toEqual([null, IN]);
    expect(d.inputs).toEqual([{ name: 'x', dtype: 'float32', dims: [null, IN] }]);
    expect(d.layerNames).toEqual(['x', 'dense/kernel', 'dense/bias', 'dense/MatMul', 'dense/BiasAdd', 'dense/Relu', 'Identity']);
  });

  it('lists nodes with op, static shape and the weights each op consumes', async () => {
    const layers = await listLayers(writeGraphModel());
    expect(layers.map((l) => [l.name, l.className, l.params])).toEqual([
      ['x', 'Placeholder', 0],
      ['dense/MatMul', 'MatMul', IN * OUT],
      ['dense/BiasAdd', 'BiasAdd', OUT],
      ['dense/Relu', 'Relu', 0],
      ['Identity', 'Identity', 0],
    ]);
    expect(layers[0]?.outputShape).toEqual([null, IN]);
    expect(layers[1]?.inputs).toEqual(['x', 'dense/kernel']);
    expect(layers[3]?.inputs).toEqual(['dense/BiasAdd']);
    expect(layers[3]?.outputShape).toBeNull();
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`captures a node's output and input in one execute (${backend})`, async () => {
      const modelJson = writeGraphModel();
      const runner = await loadRunner({
        uri: modelJson,
        backend,
        taps: [
          tap('dense/Relu', 'output', { as: 'relu' }),
          tap('dense/Relu', 'input', { as: 'pre' }),
          tap('dense/BiasAdd', 'output', { as: 'same_as_pre' }),
          tap('dense/Relu', 'output', { as: 'relu_l2', normalize: 'l2' }),
          tap('x', 'output', { as: 'input_itself' }),
        ],
        inputShape: [IN],
        fingerprint: 't',
        preprocess: null,
      });
      expect(runner.backend).toBe(backend);
      const rows = 5;
      const x = Float32Array.from({ length: rows * IN }, (_, i) => Math.sin(i * 1.3) * 2);
      const want = reference(x, rows);
      const out = await runner.run(singleFloatInput(runner, x, [IN]));
      expect(out.relu?.shape).toEqual([OUT]);
      expect(maxAbsDiff(out.relu?.data as Float32Array, want.out)).toBeLessThanOrEqual(1e-6);
      expect(maxAbsDiff(out.pre?.data as Float32Array, want.pre)).toBeLessThanOrEqual(1e-6);
      expect(maxAbsDiff(out.same_as_pre?.data as Float32Array, want.pre)).toBeLessThanOrEqual(1e-6);
      expect(maxAbsDiff(out.input_itself?.data as Float32Array, x)).toBe(0);
      const count = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await runner.run(singleFloatInput(runner, x, [IN]));
      expect(tf.memory().numTensors).toBe(count);
      await runner.dispose();
    });
  }

  it('runs a graph with a dynamic op (Where) through executeAsync, with the same features', async () => {
    // a graph that holds such an op anywhere runs through executeAsync, which TF.js needs on paths through it
    const modelJson = writeGraphModel([{ name: 'positive/Where', op: 'Where', input: ['x'], attr: { T: f32() } }]);
    const runner = await loadRunner({
      uri: modelJson,
      backend: 'cpu',
      taps: [tap('dense/Relu', 'output', { as: 'relu' })],
      inputShape: [IN],
      fingerprint: 't',
      preprocess: null,
    });
    const x = Float32Array.from({ length: IN }, (_, i) => i - 1.5);
    const out = await runner.run(singleFloatInput(runner, x, [IN]));
    expect(maxAbsDiff(out.relu?.data as Float32Array, reference(x, 1).out)).toBeLessThanOrEqual(1e-6);
    await runner.dispose();
  });

  it('l2 leaves an all-zero row at zero instead of NaN', async () => {
    const runner = await loadRunner({
      uri: writeGraphModel(),
      backend: 'cpu',
      taps: [tap('dense/MatMul', 'output', { as: 'mm', normalize: 'l2' })],
      inputShape: [IN],
      fingerprint: 't',
      preprocess: null,
    });
    const x = new Float32Array(2 * IN);
    x.set([1, 2, 3, 4], IN);
    const out = await runner.run(singleFloatInput(runner, x, [IN]));
    const data = out.mm?.data as Float32Array;
    expect(Array.from(data.subarray(0, OUT))).toEqual([0, 0, 0]);
    expect(Math.hypot(...data.subarray(OUT))).toBeCloseTo(1, 6);
    await runner.dispose();
  });

  it('rejects unknown nodes, listing the non-constant ones, and constants as taps', async () => {
    const modelJson = writeGraphModel();
    const base = { uri: modelJson, backend: 'cpu' as const, inputShape: [IN], fingerprint: 't', preprocess: null };
    const err = await loadRunner({ ...base, taps: [tap('dense/Relu6')] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownLayerError);
    expect((err as Error).message).toBe("unknown layer 'dense/Relu6'; layers are: x, dense/MatMul, dense/BiasAdd, dense/Relu, Identity");
    await expect(loadRunner({ ...base, taps: [tap('dense/kernel')] })).rejects.toThrow('is a constant (a weight)');
    await expect(loadRunner({ ...base, taps: [tap('x', 'input')] })).rejects.toThrow("node 'x' (Placeholder) has no input to tap");
  });
});
