import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { fileURLToPath } from 'node:url';
import { SEED_LEAVES, SEED_MODEL } from '../helpers/index.js';

const TEXT_MODEL = fileURLToPath(new URL('../fixtures/text-model/model.onnx', import.meta.url));

// `layertap layers` helps pick a hook point the way named_modules() does in PyTorch.
describe('layertap layers', () => {
  it('lists every layer with class, output shape and parameters', async () => {
    const r = await runCli(['layers', SEED_MODEL]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('input input: float32 [?, 28, 28, 1]');
    expect(lines[1]).toMatch(/^name\s+class\s+output shape\s+params$/);
    expect(lines).toContainEqual(expect.stringMatching(/^conv_16\.0\s+Conv2D\s+\[null,26,26,16\]\s+160$/));
    expect(lines).toContainEqual(expect.stringMatching(/^linear_class\.0\s+Dense\s+\[null,5\]\s+325$/));
    expect(lines.at(-1)).toBe('11 layers, 7237 parameters');
  });

  it('prints one JSON object with --json', async () => {
    const r = await runCli(['layers', SEED_MODEL, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      inputs: unknown[];
      layers: Array<{ name: string; className: string; outputShape: unknown; params: number; inputs: string[] }>;
    };
    expect(j.inputs).toEqual([{ name: 'input', dtype: 'float32', dims: [null, 28, 28, 1] }]);
    expect(j.layers.map((l) => l.name)).toEqual(['input', ...SEED_LEAVES]);
    const dense = j.layers.find((l) => l.name === 'linear_1.0')!;
    expect(dense).toMatchObject({ className: 'Dense', outputShape: [null, 64], params: 2112, inputs: ['conv_32.2'] });
  });

  it('lists every input of a model with several, then its nodes with module paths', async () => {
    const r = await runCli(['layers', TEXT_MODEL, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      model: string;
      inputs: unknown[];
      layers: Array<{ name: string; className: string; outputShape: unknown; module: string | null }>;
      modules: Array<{ path: string; depth: number; output: string | null; outputShape: unknown; params: number; nodes: number }>;
    };
    const text = { dtype: 'int64', dims: [null, null], dimNames: ['batch', 'sequence'] };
    expect(j.inputs).toEqual([
      { name: 'input_ids', ...text },
      { name: 'attention_mask', ...text },
      { name: 'token_type_ids', ...text },
    ]);
    expect(j.layers.slice(0, 3).map((l) => [l.name, l.className, l.outputShape])).toEqual([
      ['input_ids', 'Input', [null, null]],
      ['attention_mask', 'Input', [null, null]],
      ['token_type_ids', 'Input', [null, null]],
    ]);
    const modules = new Set(j.layers.map((l) => l.module));
    for (const m of ['embeddings.word_embeddings', 'encoder.layer.0.attention.self.query', 'encoder.layer.3.output.LayerNorm', 'pooler.dense']) {
      expect(modules).toContain(m);
    }
    for (const i of [0, 1, 2, 3]) expect(j.layers.some((l) => l.module?.startsWith(`encoder.layer.${i}.`))).toBe(true);
    // the last node of encoder.layer.1 gives [batch, sequence, hidden]: the probe ran with made-up token ids
    expect(j.layers.find((l) => l.name === '/encoder/layer.1/output/LayerNorm/Add_1')?.outputShape).toEqual([null, null, 32]);

    // the module tree, beside the nodes: one entry per module, with what a tap at output reads
    const byPath = new Map(j.modules.map((m) => [m.path, m]));
    expect(j.modules.length).toBe(69);
    expect(byPath.get('encoder.layer.1')).toEqual({
      path: 'encoder.layer.1',
      depth: 1,
      output: '/encoder/layer.1/output/LayerNorm/Add_1_output_0',
      outputShape: [null, null, 32],
      params: 8544,
      nodes: 83,
    });
    expect(byPath.get('pooler')).toMatchObject({ depth: 0, output: 'pooler_output', outputShape: [null, 32], params: 1056 });

    const t = await runCli(['layers', TEXT_MODEL, '--nodes']);
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stdout.trim().split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'input input_ids: int64 [batch, sequence]',
      'input attention_mask: int64 [batch, sequence]',
      'input token_type_ids: int64 [batch, sequence]',
    ]);
    expect(lines[3]).toMatch(/^name\s+class\s+output shape\s+params\s+module$/);
    expect(lines).toContainEqual(expect.stringMatching(/^\/pooler\/dense\/Gemm\s+Gemm\s+\[null,32\]\s+1056\s+pooler\.dense$/));
  });

  it('shows a transformer as its module tree by default: the paths taps name, output shapes, parameters', async () => {
    const r = await runCli(['layers', TEXT_MODEL, '--depth', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      [
        'input input_ids: int64 [batch, sequence]',
        'input attention_mask: int64 [batch, sequence]',
        'input token_type_ids: int64 [batch, sequence]',
        'module (what a tap names)           output shape    params',
        'embeddings                          [null,null,32]   10208',
        '  embeddings.word_embeddings        [null,null,32]    8032',
        '  embeddings.position_embeddings    [null,null,32]    2048',
        '  embeddings.token_type_embeddings  [null,null,32]      64',
        '  embeddings.LayerNorm              [null,null,32]      64',
        'encoder                             [null,null,32]   34176',
        '  encoder.layer.0                   [null,null,32]    8544',
        '  encoder.layer.1                   [null,null,32]    8544',
        '  encoder.layer.2                   [null,null,32]    8544',
        '  encoder.layer.3                   [null,null,32]    8544',
        'pooler                              [null,32]         1056',
        '  pooler.dense                      [null,32]         1056',
        '  pooler.activation                 [null,32]            0',
        '69 modules (56 deeper ones not shown; see --depth), 45440 parameters',
        "a tap's layer: is a module path (at: output reads the shape shown); --nodes lists every graph node, which taps may name too",
        '',
      ].join('\n'),
    );
    // without --depth, every level: 69 modules instead of the 296 nodes of --nodes
    const all = await runCli(['layers', TEXT_MODEL]);
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout.trim().split('\n');
    expect(lines).toHaveLength(3 + 1 + 69 + 2);
    expect(lines).toContain('        encoder.layer.3.attention.self.query            [null,null,32]    1056');
  });

  it('`layertap models` lists the built-in models a job may name, each with its input and feature layer', async () => {
    const r = await runCli(['models']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('builtin:'))).toEqual([
      'builtin:mobilenet_v2  (tfjs-layers; input 224x224x3 RGB, pixels scaled to [0, 1])',
      'builtin:mobilenet_v2_mid  (tfjs-graph; input 224x224x3 RGB, pixels scaled to [0, 1])',
      'builtin:inception_v3  (tfjs-layers; input 299x299x3 RGB, pixels scaled to [0, 1])',
    ]);
    expect(lines[2]).toBe('  pooled features: layer flatten_1 (1280 values)');
    expect(lines.at(-1)).toBe('use one as model.uri: builtin:<name>; `layertap layers builtin:<name>` lists every layer a tap may name');
    const j = JSON.parse((await runCli(['models', '--json'])).stdout) as { models: Array<{ uri: string; featureLayer: string; featureSize: number }> };
    expect(j.models.map((m) => [m.uri, m.featureSize])).toEqual([
      ['builtin:mobilenet_v2', 1280],
      ['builtin:mobilenet_v2_mid', 1792],
      ['builtin:inception_v3', 2048],
    ]);
  });

  it('--precision int8 names the nodes int8 quantizes; a precision that is not one is exit 2', async () => {
    // a copy: the int8 cache goes beside the model, not into the fixtures
    const dir = mkdtempSync(join(tmpdir(), 'layertap-layers-int8-'));
    const model = join(dir, 'model.onnx');
    copyFileSync(TEXT_MODEL, model);
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const r = await runCli(['layers', model, '--precision', 'int8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { quantized: string[]; layers: Array<{ name: string; className: string }> };
    // six linear layers in each of the four encoder layers, and the pooler
    expect(j.quantized).toHaveLength(25);
    expect(j.quantized).toContain('/encoder/layer.3/output/dense/MatMul');
    expect(j.quantized).toContain('/pooler/dense/Gemm');
    expect(j.layers.find((l) => l.name === '/encoder/layer.3/output/dense/MatMul')?.className).toBe('com.microsoft.DynamicQuantizeMatMul');
    const tree = await runCli(['layers', model, '--precision', 'int8', '--depth', '1']);
    expect(tree.stdout).toContain(
      'int8: 25 nodes quantized (MatMul/Gemm with a weight -> DynamicQuantizeMatMul, int8 weights per output channel):\n  encoder.layer.0.attention.self.query\n',
    );
    const bad = await runCli(['layers', model, '--precision', 'int4']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("layertap: --precision: 'int4' is not a precision; choices: fp32, int8\n");
  });

  it('names a missing model file', async () => {
    const r = await runCli(['layers', '/nowhere/model.json']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('/nowhere/model.json');
  });
});
