import type { ModelInputInfo } from './types.js';

const MAX_LISTED = 80;

/** A tap names a layer (or graph node) the model does not have. */
export class UnknownLayerError extends Error {
  readonly layer: string;
  readonly choices: string[];

  /** `nearest`, when given, is put first as "did you mean" (see {@link nearestNames}). */
  constructor(layer: string, choices: string[], modelUri?: string, nearest: string[] = []) {
    // graph models have hundreds of nodes; past a point the list stops helping and the hint takes over
    const listed = choices.slice(0, MAX_LISTED).join(', ');
    const more =
      choices.length > MAX_LISTED
        ? `, ... (${choices.length - MAX_LISTED} more; \`layertap layers ${modelUri ?? '<model>'}\` lists them all)`
        : '';
    const hint = nearest.length > 0 ? ` (did you mean ${nearest.map((n) => `'${n}'`).join(' or ')}?)` : '';
    super(`unknown layer '${layer}'${hint}; layers are: ${listed}${more}`);
    this.name = 'UnknownLayerError';
    this.layer = layer;
    this.choices = choices;
  }
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next.push(Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

/**
 * Up to `count` names closest to `name`: names that end with it at a '.' or '/' (a module path
 * given without its parents), then by edit distance (case-insensitive) within a third of the
 * name's length, so that a typo finds its layer and a wild guess finds nothing.
 */
export function nearestNames(name: string, names: readonly string[], count = 3): string[] {
  const key = name.toLowerCase();
  const limit = Math.max(2, Math.floor(name.length / 3));
  return names
    .map((n) => {
      const lower = n.toLowerCase();
      const suffix = lower.endsWith(`.${key}`) || lower.endsWith(`/${key}`);
      return { n, d: suffix ? -1 : editDistance(key, lower) };
    })
    .filter((s) => s.d <= limit)
    .sort((a, b) => a.d - b.d)
    .slice(0, count)
    .map((s) => s.n);
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
