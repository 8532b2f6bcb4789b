import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/models/index.js';

describe('backend selection', () => {
  it("'auto' falls back to wasm when @tensorflow/tfjs-node is absent, leaving no process handlers behind", async () => {
    let tfjsNodeInstalled = true;
    try {
      await import('@tensorflow/tfjs-node' as string);
    } catch {
      tfjsNodeInstalled = false;
    }
    const exceptionHandlers = process.listeners('uncaughtException').length;
    const rejectionHandlers = process.listeners('unhandledRejection').length;
    const chosen = await selectBackend('auto');
    expect(chosen).toBe(tfjsNodeInstalled ? 'tensorflow' : 'wasm');
    expect(tf.getBackend()).toBe(chosen);
    // the Emscripten runtime's rethrowing handlers are removed again
    expect(process.listeners('uncaughtException')).toHaveLength(exceptionHandlers);
    expect(process.listeners('unhandledRejection')).toHaveLength(rejectionHandlers);
    // and the backend computes
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])));
    expect(Array.from(await y.data())).toEqual([11]);
    y.dispose();
  });

  it("'tensorflow' without tfjs-node fails with an install hint", async () => {
    try {
      await import('@tensorflow/tfjs-node' as string);
      return; // installed here: nothing to check
    } catch {
      // expected on machines without it
    }
    await expect(selectBackend('tensorflow')).rejects.toThrow(
      "backend 'tensorflow' needs @tensorflow/tfjs-node, which is not installed: npm install @tensorflow/tfjs-node (needs internet at install)",
    );
  });

  it('forces cpu and wasm, and switches between them', async () => {
    expect(await selectBackend('cpu')).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(await selectBackend('wasm')).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(await selectBackend('auto')).toBe('wasm');
  });

  it("refuses 'onnx' for TF.js models", async () => {
    await expect(selectBackend('onnx')).rejects.toThrow("backend 'onnx' runs .onnx models");
  });
});
