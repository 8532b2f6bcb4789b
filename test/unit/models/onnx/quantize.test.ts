import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRunner } from '../../../../src/models/index.js';
import { listOnnxLayers } from '../../../../src/models/onnx/describe.js';
import { readOnnxFiles } from '../../../../src/models/onnx/files.js';
import { readInitializers } from '../../../../src/models/onnx/graph.js';
import { quantizedCachePath, quantizedOnnx, quantizeOnnx } from '../../../../src/models/onnx/quantize.js';
import type { ModelSpec, TapOutput } from '../../../../src/models/types.js';
import { cosine, expected, readNpy, removeTempDirs, SEED_DIR, tap, tempDir, TEXT_DIR, tokenInputs } from '../../../helpers/models.js';
import { buildOnnx, copySeedOnnx, SEED_ONNX, tinyLinear, tinyMatMul } from '../../../helpers/onnx.js';

const TEXT_ONNX = path.join(TEXT_DIR, 'model.onnx');
const HIDDEN = 32;
const LAYERS = 4;
const tokens = JSON.parse(readFileSync(path.join(TEXT_DIR, 'expected', 'tokens.json'), 'utf8')) as { input_ids: number[][]; lengths: number[] };

afterAll(removeTempDirs);

/** A copy of the text model in a fresh folder, so that its int8 cache is the test's own. */
function textCopy(): string {
  const file = path.join(tempDir('layertap-int8-'), 'model.onnx');
  copyFileSync(TEXT_ONNX, file);
  return file;
}

/** Mean of each row's real tokens of a [rows, width, H] tap. */
function meanReal(out: TapOutput, lengths: number[], width: number): Float32Array[] {
  const d = out.data as Float32Array;
  return lengths.map((n, r) => {
    const m = new Float32Array(HIDDEN);
    for (let t = 0; t < n; t++) for (let k = 0; k < HIDDEN; k++) m[k]! += d[(r * width + t) * HIDDEN + k]! / n;
    return m;
  });
}

describe('int8 quantization of an ONNX graph', () => {
  it('rewrites every weight product of the text model and leaves embeddings and attention products fp32', async () => {
    const files = await readOnnxFiles(TEXT_ONNX);
    const before = files.model.graph.nodes;
    const { files: q, nodes } = quantizeOnnx(files);
    // 6 linear layers per encoder layer (query, key, value, attention output, intermediate, output) and the pooler
    expect(nodes).toHaveLength(LAYERS * 6 + 1);
    expect(nodes.filter((n) => n.was === 'Gemm')).toHaveLength(before.filter((n) => n.opType === 'Gemm').length);
    const after = q.model.graph.nodes;
    const weights = new Set(q.model.graph.initializers.map((i) => i.name));
    expect(after.filter((n) => n.opType === 'DynamicQuantizeMatMul' && n.domain === 'com.microsoft').map((n) => n.name)).toEqual(nodes.map((n) => n.name));
    // what stays MatMul multiplies two activations: the attention scores and their product with the values
    const matmuls = after.filter((n) => n.opType === 'MatMul');
    expect(matmuls).toHaveLength(LAYERS * 2);
    for (const m of matmuls) expect(m.inputs.some((t) => weights.has(t))).toBe(false);
    expect(after.filter((n) => n.opType === 'Gather').length).toBe(before.filter((n) => n.opType === 'Gather').length);
    // the fp32 copies of quantized weights are gone; every int8 weight is [K, N] with N scales
    for (const n of nodes) expect(weights.has(n.weight)).toBe(false);
    expect(q.model.opsets).toContainEqual({ domain: 'com.microsoft', version: 1 });
    expect(q.bytes.byteLength).toBeLessThan(files.bytes.byteLength);
  });

  it('stores each weight as int8 per output column: the largest value of a column is 127, every value within half a step', async () => {
    const files = await readOnnxFiles(TEXT_ONNX);
    const { files: q, nodes } = quantizeOnnx(files);
    const byName = new Map(q.model.graph.nodes.map((n) => [n.name, n]));
    const fp32 = readInitializers(files.bytes, new Set(nodes.map((n) => n.weight)));
    let checked = 0;
    for (const n of nodes.filter((x) => x.was === 'MatMul')) {
      const [, qName, sName] = byName.get(n.name)!.inputs as [string, string, string];
      const got = readInitializers(q.bytes, new Set([qName, sName]));
      const w = fp32.get(n.weight)!;
      const [k, cols] = w.dims as [number, number];
      const wv = new Float32Array(w.raw!.slice().buffer);
      const qv = new Int8Array(got.get(qName)!.raw!.slice().buffer);
      const sv = new Float32Array(got.get(sName)!.raw!.slice().buffer);
      expect(got.get(qName)!.dims).toEqual([k, cols]);
      expect(sv).toHaveLength(cols);
      for (let c = 0; c < cols; c++) {
        let top = 0;
        for (let r = 0; r < k; r++) {
          top = Math.max(top, Math.abs(qv[r * cols + c]!));
          expect(Math.abs(wv[r * cols + c]! - qv[r * cols + c]! * sv[c]!)).toBeLessThanOrEqual(sv[c]! / 2 + 1e-7);
        }
        expect(top).toBe(127);
      }
      checked++;
    }
    expect(checked).toBe(LAYERS * 6);
  });

  it('keeps tap names: modules and a node whose product the int8 node takes over resolve, and values stay within cosine 0.99 of fp32 and PyTorch', async () => {
    const uri = textCopy();
    const query = '/encoder/layer.0/attention/self/query/MatMul';
    const taps = [...Array.from({ length: LAYERS }, (_, i) => tap(`encoder.layer.${i}`)), tap('pooler'), tap(query)];
    const spec = (precision?: 'int8'): ModelSpec => ({
      uri,
      backend: 'onnx',
      taps,
      inputShape: [],
      fingerprint: `q-${precision ?? 'fp32'}`,
      preprocess: null,
      ...(precision ? { precision } : {}),
    });
    const [fp32, int8] = [await loadRunner(spec()), await loadRunner(spec('int8'))];
    try {
      const feed = tokenInputs(tokens.input_ids);
      const width = Math.max(...tokens.lengths);
      const [a, b] = [await fp32.run(feed), await int8.run(feed)];
      for (let i = 0; i < LAYERS; i++) {
        const layer = `encoder.layer.${i}`;
        const mine = meanReal(b[`${layer}:output`]!, tokens.lengths, width);
        const theirs = meanReal(a[`${layer}:output`]!, tokens.lengths, width);
        const torch = readNpy(path.join(TEXT_DIR, 'expected', `${layer}__mean.npy`));
        mine.forEach((row, r) => {
          expect(cosine(row, theirs[r]!)).toBeGreaterThanOrEqual(0.99);
          expect(cosine(row, torch.data.subarray(r * HIDDEN, (r + 1) * HIDDEN))).toBeGreaterThanOrEqual(0.99);
        });
      }
      expect(cosine(b['pooler:output']!.data as Float32Array, a['pooler:output']!.data as Float32Array)).toBeGreaterThanOrEqual(0.99);
      // the query projection's product, before its bias: still there for the tap, under its name
      const q = `${query}:output`;
      expect(b[q]!.shape).toEqual(a[q]!.shape);
      expect(cosine(b[q]!.data as Float32Array, a[q]!.data as Float32Array)).toBeGreaterThanOrEqual(0.99);
    } finally {
      await fp32.dispose();
      await int8.dispose();
    }
    // the tap on the product made a graph of its own, cached beside the default one
    expect(readdirSync(path.join(path.dirname(uri), '.layertap')).filter((f) => f.endsWith('.onnx'))).toHaveLength(1);
    const files = await readOnnxFiles(uri);
    expect(quantizedCachePath(files, ['/encoder/layer.0/attention/self/query/MatMul_output_0'])).not.toBe(quantizedCachePath(files));
  });

  it('quantizes Gemm layers (transposed weights, bias) of the seed model within cosine 0.99 of PyTorch', async () => {
    const input = readNpy(path.join(SEED_DIR, 'input_nchw.npy'));
    const runner = await loadRunner({
      // a copy: the int8 cache goes beside the model, not into the fixtures
      uri: copySeedOnnx(),
      backend: 'onnx',
      taps: [tap('linear_class.0'), tap('linear_1.0')],
      inputShape: [1, 28, 28],
      fingerprint: 'seed-int8',
      preprocess: null,
      precision: 'int8',
    });
    try {
      const out = await runner.run({ input: { dtype: 'float32', dims: [input.shape[0]!, 1, 28, 28], data: input.data } });
      for (const layer of ['linear_class.0', 'linear_1.0']) {
        const ref = expected(layer, 'output');
        const per = ref.data.length / input.shape[0]!;
        const got = out[`${layer}:output`]!.data as Float32Array;
        for (let r = 0; r < input.shape[0]!; r++) {
          expect(cosine(got.subarray(r * per, (r + 1) * per), ref.data.subarray(r * per, (r + 1) * per))).toBeGreaterThanOrEqual(0.99);
        }
      }
    } finally {
      await runner.dispose();
    }
  });

  it('reads weights kept in an external data file', async () => {
    const dir = tempDir('layertap-int8-ext-');
    const file = path.join(dir, 'tiny.onnx');
    writeFileSync(file, buildOnnx(tinyLinear({ external: 'tiny.weights' }), dir));
    const runner = await loadRunner({
      uri: file,
      backend: 'onnx',
      taps: [tap('/lin/MatMul')],
      inputShape: [2],
      fingerprint: 'tiny-int8',
      preprocess: null,
      precision: 'int8',
    });
    try {
      const x = [
        [1, 2],
        [-0.5, 3],
      ];
      const out = await runner.run({ x: { dtype: 'float32', dims: [2, 2], data: Float32Array.from(x.flat()) } });
      const want = tinyMatMul(x).flat();
      const got = [...(out['/lin/MatMul:output']!.data as Float32Array)];
      // int8 of both sides: within a few hundredths on values of size 1-6
      got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(0.06));
    } finally {
      await runner.dispose();
    }
  });

  it('caches the int8 model beside the model by content hash, and reads it back on the next load', async () => {
    const uri = textCopy();
    const files = await readOnnxFiles(uri);
    const first = await quantizedOnnx(files);
    const cache = quantizedCachePath(files);
    expect(path.dirname(cache)).toBe(path.join(path.dirname(uri), '.layertap'));
    expect(existsSync(cache)).toBe(true);
    const written = statSync(cache).mtimeMs;
    const again = await quantizedOnnx(files);
    expect(Buffer.from(again.bytes).equals(Buffer.from(first.bytes))).toBe(true);
    expect(statSync(cache).mtimeMs).toBe(written);
    // no temp files left behind
    expect(readdirSync(path.dirname(cache)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // another model's bytes, another file
    const seed = await readOnnxFiles(SEED_ONNX);
    expect(path.basename(quantizedCachePath(seed))).toMatch(/^seed_model\.int8-[0-9a-f]{16}\.onnx$/);
  });

  it('layers --precision int8 lists the quantized nodes with their int8 op', async () => {
    const uri = textCopy();
    const layers = await listOnnxLayers(uri, { precision: 'int8', probeShapes: false });
    const byName = new Map(layers.map((l) => [l.name, l]));
    expect(byName.get('/encoder/layer.2/intermediate/dense/MatMul')?.className).toBe('com.microsoft.DynamicQuantizeMatMul');
    expect(byName.get('/encoder/layer.2/intermediate/dense/MatMul')?.module).toBe('encoder.layer.2.intermediate.dense');
    expect(layers.filter((l) => l.className === 'com.microsoft.DynamicQuantizeMatMul')).toHaveLength(LAYERS * 6 + 1);
    const fp32 = await listOnnxLayers(uri, { probeShapes: false });
    expect(fp32.filter((l) => l.className === 'com.microsoft.DynamicQuantizeMatMul')).toHaveLength(0);
  });
});
