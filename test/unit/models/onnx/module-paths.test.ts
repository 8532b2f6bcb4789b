import { describe, expect, it } from 'vitest';
import { UnknownLayerError } from '../../../../src/models/errors.js';
import { nearestNames } from '../../../../src/types/did-you-mean.js';
import type { OnnxGraph, OnnxNode } from '../../../../src/models/onnx/graph.js';
import { moduleChain, modulePath, OnnxTapIndex } from '../../../../src/models/onnx/module-paths.js';

function graph(nodes: OnnxNode[], opts: { inputs?: string[]; outputs?: string[]; weights?: string[] } = {}): OnnxGraph {
  const info = (name: string) => ({ name, elemType: 1, shape: null });
  return {
    nodes,
    inputs: (opts.inputs ?? ['input']).map(info),
    outputs: (opts.outputs ?? []).map(info),
    valueInfo: [],
    initializers: (opts.weights ?? []).map((name) => ({ name, dims: [1], dataType: 1, external: null })),
  };
}

function node(name: string, opType: string, inputs: string[], outputs: string[]): OnnxNode {
  return { name, opType, domain: '', inputs, outputs };
}

// torchvision's mobilenet_v2 as torch.onnx.export names it: a stem conv block, then an inverted
// residual block whose skip connection (Add) sits in the block's own scope, then the classifier.
const MOBILENET_LIKE = graph(
  [
    node('/features/features.0/features.0.0/Conv', 'Conv', ['input', 'w0'], ['a']),
    node('/features/features.0/features.0.2/Clip', 'Clip', ['a', 'lo', 'hi'], ['b']),
    node('/features/features.1/conv/conv.0/conv.0.0/Conv', 'Conv', ['b', 'w1'], ['c']),
    node('/features/features.1/conv/conv.1/Conv', 'Conv', ['c', 'w2'], ['d']),
    node('/features/features.1/Add', 'Add', ['b', 'd'], ['e']),
    node('/GlobalAveragePool', 'GlobalAveragePool', ['e'], ['f']),
    node('/Flatten', 'Flatten', ['f'], ['g']),
    node('/classifier/classifier.1/Gemm', 'Gemm', ['g', 'w3', 'b3'], ['logits']),
  ],
  { outputs: ['logits'], weights: ['w0', 'lo', 'hi', 'w1', 'w2', 'w3', 'b3'] },
);

describe('module paths from exported node names', () => {
  it('rebuilds the full path of every enclosing module', () => {
    expect(moduleChain('/features/features.1/conv/conv.0/conv.0.0/Conv')).toEqual([
      'features',
      'features.1',
      'features.1.conv',
      'features.1.conv.0',
      'features.1.conv.0.0',
    ]);
    expect(moduleChain('/linear_1/linear_1.1/Relu')).toEqual(['linear_1', 'linear_1.1']);
    expect(moduleChain('/model/layers.0/self_attn/q_proj/MatMul')).toEqual([
      'model',
      'model.layers.0',
      'model.layers.0.self_attn',
      'model.layers.0.self_attn.q_proj',
    ]);
    // a Sequential at the root: numeric names all the way down
    expect(moduleChain('/2/2.0/2.0.1/Relu')).toEqual(['2', '2.0', '2.0.1']);
  });

  it('puts root-level ops in the root module and unscoped names in none', () => {
    expect(moduleChain('/Reshape')).toEqual([]);
    expect(modulePath('/Reshape')).toBe('');
    expect(modulePath('Constant_12')).toBeNull();
    expect(modulePath('conv1')).toBeNull();
    expect(modulePath('/linear_1/linear_1.1/Relu')).toBe('linear_1.1');
  });
});

describe('OnnxTapIndex', () => {
  const index = new OnnxTapIndex(MOBILENET_LIKE, 'mobilenet.onnx');

  it('lists module paths first, then node names, inputs and tensors; no weights', () => {
    const names = index.names();
    expect(names.slice(0, 9)).toEqual([
      'features',
      'features.0',
      'features.0.0',
      'features.0.2',
      'features.1',
      'features.1.conv',
      'features.1.conv.0',
      'features.1.conv.0.0',
      'features.1.conv.1',
    ]);
    expect(names).toContain('classifier.1');
    expect(names).toContain('/features/features.1/Add');
    expect(names).toContain('input');
    expect(names).toContain('e');
    expect(names).not.toContain('w0');
    expect(names).not.toContain('');
  });

  it("taps a module's output where it leaves the module, as a forward hook sees it", () => {
    // the block's output is the residual sum, made by its last node
    expect(index.resolve('features.1', 'output')).toEqual({ tensor: 'e', kind: 'module' });
    expect(index.resolve('features.1.conv', 'output')).toEqual({ tensor: 'd', kind: 'module' });
    expect(index.resolve('features', 'output')).toEqual({ tensor: 'e', kind: 'module' });
    expect(index.resolve('features.0.2', 'output').tensor).toBe('b');
    expect(index.resolve('classifier.1', 'output').tensor).toBe('logits');
  });

  it("taps a module's input as the first activation entering it (weights and constants are not inputs)", () => {
    expect(index.resolve('features.1', 'input').tensor).toBe('b');
    expect(index.resolve('features.1.conv.1', 'input').tensor).toBe('c');
    expect(index.resolve('features.0.2', 'input').tensor).toBe('a');
    expect(index.resolve('features', 'input').tensor).toBe('input');
    // the classifier's input is the flattened pooled features: the embedding people hook
    expect(index.resolve('classifier.1', 'input').tensor).toBe('g');
  });

  it('taps nodes by name and tensors by name', () => {
    expect(index.resolve('/features/features.1/Add', 'output')).toEqual({ tensor: 'e', kind: 'node' });
    expect(index.resolve('/features/features.1/Add', 'input')).toEqual({ tensor: 'b', kind: 'node' });
    expect(index.resolve('f', 'output')).toEqual({ tensor: 'f', kind: 'tensor' });
    expect(index.resolve('input', 'output')).toEqual({ tensor: 'input', kind: 'tensor' });
  });

  it('names the nearest module paths for one that does not exist', () => {
    let err: unknown;
    try {
      index.resolve('features.1.conv.2', 'output');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnknownLayerError);
    expect((err as Error).message).toMatch(
      /^unknown layer 'features\.1\.conv\.2' \(did you mean 'features\.1\.conv\.0' or 'features\.1\.conv\.1' or 'features\.1\.conv'\?\); layers are: features, features\.0, /,
    );
  });

  it('suggests the full paths of a module given without its parents', () => {
    expect(() => index.resolve('conv.0.0', 'output')).toThrow("(did you mean 'features.1.conv.0.0'");
  });

  it('refuses weights, a tensor at input, and a multi-output module, naming the way out', () => {
    expect(() => index.resolve('w1', 'output')).toThrow("'w1' is a weight (initializer), not an activation");
    expect(() => index.resolve('e', 'input')).toThrow("'e' is a tensor, which has no input (it is made by node '/features/features.1/Add')");
    const lstm = new OnnxTapIndex(
      graph(
        [
          node('/rnn/LSTM', 'LSTM', ['input', 'W', 'R'], ['y', 'h', 'c']),
          node('/head/Gemm', 'Gemm', ['y', 'hw'], ['out']),
          node('/Concat', 'Concat', ['h', 'c'], ['state']),
        ],
        { outputs: ['out', 'state'], weights: ['W', 'R', 'hw'] },
      ),
      'lstm.onnx',
    );
    expect(() => lstm.resolve('rnn', 'output')).toThrow("module 'rnn' returns 3 tensors (y, h, c); tap one of them by tensor name");
    expect(() => lstm.resolve('/rnn/LSTM', 'output')).toThrow('has 3 outputs (y, h, c)');
    expect(lstm.resolve('h', 'output').tensor).toBe('h');
    expect(lstm.resolve('rnn', 'input').tensor).toBe('input');
  });

  it('works on graphs whose node names carry no module path', () => {
    const plain = new OnnxTapIndex(
      graph([node('conv1', 'Conv', ['input', 'w'], ['conv1:0']), node('relu1', 'Relu', ['conv1:0'], ['out'])], {
        outputs: ['out'],
        weights: ['w'],
      }),
      'plain.onnx',
    );
    expect(plain.names()).toEqual(['conv1', 'relu1', 'input', 'conv1:0', 'out']);
    expect(plain.resolve('relu1', 'input').tensor).toBe('conv1:0');
  });
});

describe('nearestNames', () => {
  it('ranks suffix matches, then edit distance, and finds nothing for a wild guess', () => {
    expect(nearestNames('linear_1.7', ['conv_16', 'linear_1', 'linear_1.0', 'linear_1.1'])).toEqual(['linear_1.0', 'linear_1.1', 'linear_1']);
    expect(nearestNames('1.conv', ['features.1.conv', 'features.2.conv'])).toEqual(['features.1.conv']);
    expect(nearestNames('zzzzzz', ['conv_16', 'linear_1'])).toEqual([]);
  });
});
