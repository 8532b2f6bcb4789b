import type { ResolvedTap } from '../../src/config/resolved.js';
import { buildSchema } from '../../src/sinks/index.js';

/** Two taps of the part-file tests: a float32 [4] column and a float16 [2, 3] one. */
export const PART_TAPS: ResolvedTap[] = [
  { layer: 'linear_1.0', at: 'output', as: 'emb', reduce: 'none', normalize: 'l2', dtype: 'float32' },
  { layer: 'conv_16.2', at: 'input', as: 'feat', reduce: 'mean', normalize: 'none', dtype: 'float16' },
];

/** The part-file schema of {@link PART_TAPS}, as a TF.js run on wasm writes it. */
export function partSchema() {
  return buildSchema({
    taps: PART_TAPS,
    shapes: { emb: [4], feat: [2, 3] },
    layout: 'nhwc',
    fingerprint: '0123456789abcdef',
    model: '/models/m/model.json',
    runtime: 'wasm',
    version: '0.1.0',
    runId: 'run-1',
  });
}
