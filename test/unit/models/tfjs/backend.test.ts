import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../../src/models/index.js';
import { ROOT } from '../../../helpers/index.js';

type TfjsNode = 'loads' | 'missing' | 'broken';

/**
 * Whether @tensorflow/tfjs-node is absent, or loads and initialises its 'tensorflow' backend
 * with this package's tfjs-core, or is installed but does not. Asked of a fresh process, so the
 * answer does not depend on (or change) what this thread has imported.
 */
async function probeTfjsNode(): Promise<TfjsNode> {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(process.cwd() + '/package.json');
    try { require.resolve('@tensorflow/tfjs-node'); } catch { console.log('missing'); process.exit(0); }
    try {
      const core = await import('@tensorflow/tfjs-core');
      await import('@tensorflow/tfjs-node');
      console.log(core.findBackendFactory('tensorflow') != null && (await core.setBackend('tensorflow')) ? 'loads' : 'broken');
    } catch { console.log('broken'); }
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
  const state = stdout.trim().split('\n').pop();
  if (state !== 'loads' && state !== 'missing' && state !== 'broken') throw new Error(`tfjs-node probe printed: ${stdout}`);
  return state;
}

describe('backend selection', () => {
  let tfjsNode: TfjsNode;
  // 'auto' prefers tfjs-node's native backend and falls back to wasm
  let autoBackend: string;
  beforeAll(async () => {
    tfjsNode = await probeTfjsNode();
    autoBackend = tfjsNode === 'loads' ? 'tensorflow' : 'wasm';
  });

  it("'auto' picks tensorflow when @tensorflow/tfjs-node loads, else wasm, leaving no process handlers behind", async () => {
    const exceptionHandlers = process.listeners('uncaughtException').length;
    const rejectionHandlers = process.listeners('unhandledRejection').length;
    const chosen = await selectBackend('auto');
    expect(chosen).toBe(autoBackend);
    expect(tf.getBackend()).toBe(chosen);
    // the Emscripten runtime's rethrowing handlers are removed again
    expect(process.listeners('uncaughtException')).toHaveLength(exceptionHandlers);
    expect(process.listeners('unhandledRejection')).toHaveLength(rejectionHandlers);
    // and the backend computes
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])));
    expect(Array.from(await y.data())).toEqual([11]);
    y.dispose();
  });

  it("'tensorflow' runs on tfjs-node where it loads, and fails with an install hint where it is missing", async () => {
    if (tfjsNode === 'loads') {
      expect(await selectBackend('tensorflow')).toBe('tensorflow');
      expect(tf.getBackend()).toBe('tensorflow');
    } else if (tfjsNode === 'missing') {
      await expect(selectBackend('tensorflow')).rejects.toThrow(
        "backend 'tensorflow' needs @tensorflow/tfjs-node, which is not installed: npm install @tensorflow/tfjs-node (needs internet at install)",
      );
    } else {
      await expect(selectBackend('tensorflow')).rejects.toThrow(
        /^backend 'tensorflow': @tensorflow\/tfjs-node (is installed but failed to load|loaded but did not register|failed to initialise)/,
      );
    }
  });

  it('forces cpu and wasm, and switches between them', async () => {
    expect(await selectBackend('cpu')).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(await selectBackend('wasm')).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    // back to what 'auto' chose, whichever was forced since
    expect(await selectBackend('auto')).toBe(autoBackend);
    expect(tf.getBackend()).toBe(autoBackend);
  });

  it("refuses 'onnx' for TF.js models", async () => {
    await expect(selectBackend('onnx')).rejects.toThrow("backend 'onnx' runs .onnx models");
  });
});
