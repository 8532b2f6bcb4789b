import { describe, expect, it, vi } from 'vitest';
import { selectBackend } from '../../../../src/models/tfjs/backend.js';
import { loadTfjs } from '../../../../src/models/tfjs/tfjs.js';

// tfjs-core's cpu backend greets Node users with an "install our node backend" banner on its first
// tensor; layertap reports the backend it runs on itself, so the banner is switched off.
describe('TF.js in Node', () => {
  it('prints no "install our node backend" banner on the cpu backend', async () => {
    const warn = vi.spyOn(console, 'warn');
    try {
      await selectBackend('cpu');
      const { core } = await loadTfjs();
      // the banner comes with the first tensor the backend stores (this file runs in a fresh worker)
      core.tensor([1, 2, 3]).dispose();
      const printed = warn.mock.calls.map((c) => c.join(' '));
      expect(printed.filter((line) => line.includes('looks like you are running TensorFlow.js'))).toEqual([]);
    } finally {
      warn.mockRestore();
    }
  });
});
