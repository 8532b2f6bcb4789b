import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeModel, listLayers } from '../../../../src/models/index.js';
import { parseOnnxModel, withGraphOutputs } from '../../../../src/models/onnx/graph.js';
import { removeTempDirs, tempDir } from '../../../helpers/models.js';
import { buildOnnx, copySeedOnnx, flipWeightBit, SEED_LEAVES, SEED_ONNX, tinyLinear, type TinyModel, type TinyNode } from '../../../helpers/onnx.js';

afterAll(removeTempDirs);

describe('reading an ONNX model', () => {
  const bytes = new Uint8Array(readFileSync(SEED_ONNX));

  it('decodes the graph: nodes with op and module-path names, input, weights', () => {
    const m = parseOnnxModel(bytes, SEED_ONNX);
    expect(m.irVersion).toBeGreaterThanOrEqual(7);
    expect(m.opsets).toContainEqual({ domain: '', version: 13 });
    expect(m.graph.inputs).toEqual([{ name: 'input', elemType: 1, shape: ['n', 1, 28, 28] }]);
    expect(m.graph.outputs.map((o) => o.name)).toEqual(['logits']);
    const relu = m.graph.nodes.find((n) => n.name === '/linear_1/linear_1.1/Relu');
    expect(relu).toEqual({
      name: '/linear_1/linear_1.1/Relu',
      opType: 'Relu',
      domain: '',
      inputs: ['/linear_1/linear_1.0/Gemm_output_0'],
      outputs: ['/linear_1/linear_1.1/Relu_output_0'],
    });
    expect(m.graph.initializers.find((i) => i.name === 'conv_32.0.weight')).toMatchObject({ dims: [32, 16, 3, 3], dataType: 1, external: null });
  });

  it('adds graph outputs on the wire and keeps every other byte', () => {
    const edited = withGraphOutputs(bytes, [
      { name: '/conv_16/conv_16.2/MaxPool_output_0', elemType: 1 },
      { name: '/Shape_output_0', elemType: null },
    ]);
    const before = parseOnnxModel(bytes, 'before');
    const after = parseOnnxModel(edited, 'after');
    expect(after.graph.nodes).toEqual(before.graph.nodes);
    expect(after.graph.initializers).toEqual(before.graph.initializers);
    expect(after.graph.outputs).toEqual([
      ...before.graph.outputs,
      { name: '/conv_16/conv_16.2/MaxPool_output_0', elemType: 1, shape: null },
      { name: '/Shape_output_0', elemType: null, shape: null },
    ]);
    // the weights are byte-identical: the edit only grows the graph message
    expect(edited.byteLength).toBeGreaterThan(bytes.byteLength);
    expect(withGraphOutputs(bytes, [])).toBe(bytes);
  });

  it('rejects bytes that are not a ModelProto', () => {
    expect(() => parseOnnxModel(new Uint8Array([0xff, 0xff, 0xff]), 'junk.onnx')).toThrow(/^invalid ONNX model junk\.onnx: /);
    expect(() => parseOnnxModel(new TextEncoder().encode('{"json": true}'), 'text.onnx')).toThrow('invalid ONNX model text.onnx');
  });
});

describe('describeModel on .onnx', () => {
  it('gives format, NCHW input with a null batch, and module paths, node and tensor names as layers', async () => {
    const d = await describeModel(SEED_ONNX);
    expect(d.format).toBe('onnx');
    expect(d.inputShape).toEqual([null, 1, 28, 28]);
    expect(d.inputLayout).toBe('nchw');
    for (const m of [...SEED_LEAVES, 'conv_16', 'linear_class']) expect(d.layerNames).toContain(m);
    expect(d.layerNames.slice(0, 3)).toEqual(['conv_16', 'conv_16.0', 'conv_16.1']);
    expect(d.layerNames).toContain('/linear_1/linear_1.1/Relu');
    expect(d.layerNames).toContain('/linear_1/linear_1.1/Relu_output_0');
    expect(d.layerNames).toContain('logits');
    expect(d.layerNames).not.toContain('conv_16.0.weight');
    expect(d.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(() => d.checkTap?.('linear_1.1', 'output')).not.toThrow();
    expect(() => d.checkTap?.('linear_1.9', 'output')).toThrow("unknown layer 'linear_1.9' (did you mean 'linear_1.0' or 'linear_1.1'");
  });

  it('changes the content hash when one weight bit changes', async () => {
    const copy = copySeedOnnx();
    expect((await describeModel(copy)).contentHash).toBe((await describeModel(SEED_ONNX)).contentHash);
    flipWeightBit(copy);
    expect((await describeModel(copy)).contentHash).not.toBe((await describeModel(SEED_ONNX)).contentHash);
  });

  it('hashes external data, and refuses external data outside the model folder', async () => {
    const dir = tempDir('layertap-onnx-ext-');
    const file = path.join(dir, 'tiny.onnx');
    writeFileSync(file, buildOnnx(tinyLinear({ external: 'tiny.weights' }), dir));
    const d = await describeModel(file);
    expect(d.layerNames.slice(0, 2)).toEqual(['lin', 'act']);
    const weights = readFileSync(path.join(dir, 'tiny.weights'));
    weights[0]! ^= 0x01;
    writeFileSync(path.join(dir, 'tiny.weights'), weights);
    expect((await describeModel(file)).contentHash).not.toBe(d.contentHash);

    const short = path.join(dir, 'short.onnx');
    writeFileSync(short, buildOnnx(tinyLinear({ external: 'short.weights' }), dir));
    writeFileSync(path.join(dir, 'short.weights'), new Uint8Array(8));
    await expect(describeModel(short)).rejects.toThrow("weight 'lin.weight' needs bytes 0..24 of short.weights, which has 8; the file is truncated");

    const outside = path.join(dir, 'outside.onnx');
    const model = tinyLinear({ external: 'x.weights' });
    model.initializers![0]!.location = '../x.weights';
    writeFileSync(outside, buildOnnx(model, dir));
    await expect(describeModel(outside)).rejects.toThrow("external data location '../x.weights' climbs out with '..'");
    model.initializers![0]!.location = '/etc/passwd';
    writeFileSync(outside, buildOnnx(model, dir));
    await expect(describeModel(outside)).rejects.toThrow("external data location '/etc/passwd' is absolute");
  });

  it('checks and hashes external data of node attributes and subgraphs too', async () => {
    const dir = tempDir('layertap-onnx-ext-attr-');
    const withNodes = (nodes: TinyNode[]): TinyModel => {
      const m = tinyLinear();
      m.nodes.push(...nodes);
      return m;
    };
    const constant = (location?: string): TinyNode => ({
      name: '/c/Constant',
      op: 'Constant',
      inputs: [],
      outputs: ['c'],
      attributes: [{ name: 'value', tensor: { name: '', dims: [3], values: [1, 2, 3], external: 'const.bin', ...(location ? { location } : {}) } }],
    });
    const branch = (location: string): TinyNode => ({
      name: '/if/If',
      op: 'If',
      inputs: ['cond'],
      outputs: ['z'],
      attributes: [{ name: 'then_branch', graph: [{ name: 'w_then', dims: [1], values: [5], external: 'then.bin', location }] }],
    });

    const inside = path.join(dir, 'inside.onnx');
    writeFileSync(inside, buildOnnx(withNodes([constant()]), dir));
    const d = await describeModel(inside);
    const bytes = readFileSync(path.join(dir, 'const.bin'));
    bytes[0]! ^= 0x01;
    writeFileSync(path.join(dir, 'const.bin'), bytes);
    expect((await describeModel(inside)).contentHash).not.toBe(d.contentHash);

    const bad = path.join(dir, 'bad.onnx');
    writeFileSync(bad, buildOnnx(withNodes([constant('../const.bin')]), dir));
    await expect(describeModel(bad)).rejects.toThrow(`ONNX model ${bad}: external data location '../const.bin' climbs out with '..'`);
    writeFileSync(bad, buildOnnx(withNodes([branch('/etc/passwd')]), dir));
    await expect(describeModel(bad)).rejects.toThrow(`ONNX model ${bad}: external data location '/etc/passwd' is absolute`);
  });

  it('names a missing file, and lists every input of a model with two, or with an int64 one', async () => {
    await expect(describeModel('/nowhere/model.onnx')).rejects.toThrow('model file not found: /nowhere/model.onnx');
    const dir = tempDir('layertap-onnx-two-');
    const file = path.join(dir, 'two.onnx');
    writeFileSync(file, buildOnnx({ ...tinyLinear(), extraInputs: [{ name: 'x2', dims: ['batch', 5, 'width'] }] }));
    const two = await describeModel(file);
    expect(two.inputs).toEqual([
      { name: 'x', dtype: 'float32', dims: [null, 2], dimNames: ['batch', null] },
      { name: 'x2', dtype: 'float32', dims: [null, 5, null], dimNames: ['batch', null, 'width'] },
    ]);
    expect(two.inputShape).toEqual([null, 2]);
    writeFileSync(file, buildOnnx({ ...tinyLinear(), input: { name: 'x', dims: [4, 2], elemType: 7 } }));
    expect((await describeModel(file)).inputs).toEqual([{ name: 'x', dtype: 'int64', dims: [4, 2] }]);
  });

  it('lists the single input of the seed model with its symbolic batch axis', async () => {
    expect((await describeModel(SEED_ONNX)).inputs).toEqual([{ name: 'input', dtype: 'float32', dims: [null, 1, 28, 28], dimNames: ['n', null, null, null] }]);
  });
});

describe('listLayers on .onnx', () => {
  it('lists the input and every node with op, module path, output tensors, shapes and weights', async () => {
    const layers = await listLayers(SEED_ONNX);
    expect(layers[0]).toEqual({ name: 'input', className: 'Input', outputShape: [null, 1, 28, 28], params: 0, inputs: [], outputs: ['input'], module: null });
    const conv = layers.find((l) => l.name === '/conv_16/conv_16.0/Conv');
    expect(conv).toEqual({
      name: '/conv_16/conv_16.0/Conv',
      className: 'Conv',
      outputShape: [null, 16, 26, 26],
      params: 160,
      inputs: ['input'],
      outputs: ['/conv_16/conv_16.0/Conv_output_0'],
      module: 'conv_16.0',
    });
    expect(layers.find((l) => l.module === 'conv_16.2')?.outputShape).toEqual([null, 16, 13, 13]);
    expect(layers.find((l) => l.module === 'linear_1.1')).toMatchObject({ className: 'Relu', outputShape: [null, 64], inputs: ['/linear_1/linear_1.0/Gemm'] });
    expect(layers.find((l) => l.name === '/Reshape')).toMatchObject({ module: '', outputShape: [null, 32] });
    // shape arithmetic has no batch axis
    expect(layers.find((l) => l.name === '/Shape')?.outputShape).toEqual([4]);
    expect(layers.some((l) => l.className === 'Constant')).toBe(false);
    expect(layers.reduce((n, l) => n + l.params, 0)).toBe(7237);
  });
});
