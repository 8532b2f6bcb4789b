import type { ModelInputInfo } from './types.js';

const MAX_LISTED = 80;

/** A tap names a layer (or graph node) the model does not have. */
export class UnknownLayerError extends Error {
  readonly layer: string;
  readonly choices: string[];

  /** `nearest`, when given, is put first as "did you mean" (see nearestNames in types/did-you-mean.ts). */
  constructor(layer: string, choices: string[], modelUri?: string, nearest: string[] = []) {
    // graph models have hundreds of nodes; past a point the list stops helping and the hint takes over
    const listed = choices.slice(0, MAX_LISTED).join(', ');
    const more = choices.length > MAX_LISTED ? `, ... (${choices.length - MAX_LISTED} more; \`layertap layers ${modelUri ?? '<model>'}\` lists them all)` : '';
    const hint = nearest.length > 0 ? ` (did you mean ${nearest.map((n) => `'${n}'`).join(' or ')}?)` : '';
    super(`unknown layer '${layer}'${hint}; layers are: ${listed}${more}`);
    this.name = 'UnknownLayerError';
    this.layer = layer;
    this.choices = choices;
  }
}

/**
 * A forward pass was handed inputs the model does not take: a missing or unknown input, or one
 * of another dtype or dims. `input` names the offending input; `expected` lists what the model takes.
 */
export class ModelInputError extends Error {
  readonly input: string;
  readonly expected: readonly ModelInputInfo[];

  constructor(input: string, message: string, expected: readonly ModelInputInfo[]) {
    super(message);
    this.name = 'ModelInputError';
    this.input = input;
    this.expected = expected;
  }
}
