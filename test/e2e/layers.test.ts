import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { SEED_MODEL } from '../helpers/index.js';

// `layertap layers` helps pick a hook point the way named_modules() does in PyTorch.
describe('layertap layers', () => {
  it('lists every layer with class, output shape and parameters', async () => {
    const r = await runCli(['layers', SEED_MODEL]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^name\s+class\s+output shape\s+params$/);
    expect(lines).toContainEqual(expect.stringMatching(/^conv_16\.0\s+Conv2D\s+\[null,26,26,16\]\s+160$/));
    expect(lines).toContainEqual(expect.stringMatching(/^linear_class\.0\s+Dense\s+\[null,5\]\s+325$/));
    expect(lines.at(-1)).toBe('11 layers, 7237 parameters');
  });

  it('prints one JSON object with --json', async () => {
    const r = await runCli(['layers', SEED_MODEL, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { layers: Array<{ name: string; className: string; outputShape: unknown; params: number; inputs: string[] }> };
    expect(j.layers.map((l) => l.name)).toEqual([
      'input', 'conv_16.0', 'conv_16.1', 'conv_16.2', 'conv_32.0', 'conv_32.1', 'conv_32.2', 'linear_1.0', 'linear_1.1', 'linear_class.0', 'linear_class.1',
    ]);
    const dense = j.layers.find((l) => l.name === 'linear_1.0')!;
    expect(dense).toMatchObject({ className: 'Dense', outputShape: [null, 64], params: 2112, inputs: ['conv_32.2'] });
  });

  it('names a missing model file', async () => {
    const r = await runCli(['layers', '/nowhere/model.json']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('/nowhere/model.json');
  });
});
