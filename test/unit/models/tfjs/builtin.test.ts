import { describe, expect, it } from 'vitest';
import { BUILTIN_MODELS, describeModel, listLayers, loadRunner, singleFloatInput } from '../../../../src/models/index.js';
import { maxAbsDiff, tap } from '../../../helpers/models.js';

const MID_FEATURE =
  'StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/StatefulPartitionedCall/' +
  'StatefulPartitionedCall/predict/feature_vector/SpatialSqueeze';
const MID_LAST_CONV =
  'StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/StatefulPartitionedCall/' +
  'StatefulPartitionedCall/predict/MobilenetV2/Conv_1/Relu6';

/** Deterministic pseudo-random pixels in [0, 1]. */
function randomImages(rows: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: rows * 224 * 224 * 3 }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  });
}

describe('builtin models', () => {
  it('lists the builtins with licence and source', () => {
    expect(BUILTIN_MODELS.map((m) => m.name)).toEqual(['mobilenet_v2', 'mobilenet_v2_mid', 'inception_v3']);
    for (const m of BUILTIN_MODELS) {
      expect(m.license).toMatch(/^MIT/);
      expect(m.source).toContain('github.com/infinitered/nsfwjs');
    }
  });

  it('describes builtin:mobilenet_v2 as a Keras LayersModel', async () => {
    const d = await describeModel('builtin:mobilenet_v2');
    expect(d.format).toBe('tfjs-layers');
    expect(d.inputShape).toEqual([null, 224, 224, 3]);
    expect(d.layerNames).toContain('flatten_1');
    expect(d.layerNames).toContain('dense_1');
    expect(d.layerNames).toHaveLength(162);
    expect(d.contentHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('describes builtin:mobilenet_v2_mid as a GraphModel', async () => {
    const d = await describeModel('builtin:mobilenet_v2_mid');
    expect(d.format).toBe('tfjs-graph');
    expect(d.inputShape).toEqual([null, 224, 224, 3]);
    expect(d.layerNames).toContain(MID_FEATURE);
  });

  it('rejects an unknown builtin, naming the known ones', async () => {
    await expect(describeModel('builtin:resnet')).rejects.toThrow(
      "unknown builtin model 'builtin:resnet'; builtins are: builtin:mobilenet_v2, builtin:mobilenet_v2_mid, builtin:inception_v3",
    );
  });

  it('lists mobilenet_v2 layers with shapes and params', async () => {
    const layers = await listLayers('builtin:mobilenet_v2');
    const byName = Object.fromEntries(layers.map((l) => [l.name, l]));
    expect(byName['flatten_1']).toMatchObject({ className: 'Flatten', outputShape: [null, 1280], params: 0, inputs: ['average_pooling2d_1'] });
    expect(byName['dense_1']).toMatchObject({ className: 'Dense', outputShape: [null, 256], params: 1280 * 256 + 256 });
    expect(byName['Conv1']).toMatchObject({ className: 'Conv2D', outputShape: [null, 112, 112, 32], params: 3 * 3 * 3 * 32 });
  });

  it('runs builtin:mobilenet_v2 on wasm: flatten_1 is the 1280-d mean of out_relu', async () => {
    const runner = await loadRunner({
      uri: 'builtin:mobilenet_v2',
      backend: 'wasm',
      taps: [tap('flatten_1'), tap('out_relu', 'output', { as: 'pooled', reduce: 'mean' }), tap('dense_1'), tap('dense_3', 'output', { as: 'probs' })],
      inputShape: [224, 224, 3],
      fingerprint: 't',
      preprocess: null,
    });
    expect(runner.backend).toBe('wasm');
    const out = await runner.run(singleFloatInput(runner, randomImages(2), [224, 224, 3]));
    await runner.dispose();
    expect(out['flatten_1:output']?.shape).toEqual([1280]);
    expect(out['flatten_1:output']?.data).toHaveLength(2 * 1280);
    expect(out['dense_1:output']?.shape).toEqual([256]);
    const flat = out['flatten_1:output']?.data as Float32Array;
    // average_pooling2d_1 pools the whole 7x7 map, so it is exactly a spatial mean of out_relu
    expect(maxAbsDiff(out.pooled?.data as Float32Array, flat)).toBeLessThanOrEqual(1e-4);
    expect(flat.some((v) => v > 0)).toBe(true);
    expect(flat.every((v) => v >= 0 && v <= 6)).toBe(true); // after ReLU6
    const probs = out.probs?.data as Float32Array;
    expect(probs[0]! + probs[1]! + probs[2]! + probs[3]! + probs[4]!).toBeCloseTo(1, 5);
  });

  it('runs builtin:mobilenet_v2_mid (GraphModel) on wasm: the 1792-d feature vector', async () => {
    const runner = await loadRunner({
      uri: 'builtin:mobilenet_v2_mid',
      backend: 'wasm',
      taps: [
        tap(MID_FEATURE, 'output', { as: 'feature' }),
        tap(MID_LAST_CONV, 'output', { as: 'pooled', reduce: 'mean' }),
        tap(MID_FEATURE, 'input', { as: 'before_squeeze' }),
      ],
      inputShape: [224, 224, 3],
      fingerprint: 't',
      preprocess: null,
    });
    const out = await runner.run(singleFloatInput(runner, randomImages(2, 7), [224, 224, 3]));
    await runner.dispose();
    expect(out.feature?.shape).toEqual([1792]);
    expect(out.before_squeeze?.shape).toEqual([1, 1, 1792]);
    expect(out.pooled?.shape).toEqual([1792]);
    const feature = out.feature?.data as Float32Array;
    expect(maxAbsDiff(out.before_squeeze?.data as Float32Array, feature)).toBe(0);
    expect(maxAbsDiff(out.pooled?.data as Float32Array, feature)).toBeLessThanOrEqual(1e-4);
  });
});
