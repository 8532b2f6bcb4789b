import { JobConfigError } from '../config/errors.js';
import { defaultColumnName } from '../config/names.js';
import type { ResolvedTap } from '../config/resolved.js';
import type { TapConfig } from '../config/schema.js';
import { reduceProblem } from '../models/reductions.js';
import type { ModelDescription } from '../models/types.js';
import { nearestNames } from '../types/did-you-mean.js';

/** A tap's layer as a pattern: `*` is any run of characters other than '.' and '/'. */
function globPattern(layer: string): RegExp {
  return new RegExp(
    `^${layer
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^./]*')}$`,
  );
}

/** Each tap as the concrete layers it names: a glob becomes one tap per matching layer, in the model's order. */
function expandGlobs(taps: TapConfig[], desc: ModelDescription, modelUri: string): Array<{ tap: TapConfig; i: number }> {
  return taps.flatMap((tap, i) => {
    if (!tap.layer.includes('*')) {
      if (tap.as?.includes('{name}'))
        throw new JobConfigError(`taps[${i}].as: {name} stands for each layer a glob matches, but layer '${tap.layer}' is not a glob`, [`taps[${i}].as`]);
      return [{ tap, i }];
    }
    if (tap.as !== undefined && !tap.as.includes('{name}')) {
      throw new JobConfigError(
        `taps[${i}].as: '${tap.as}' names one column, but layer '${tap.layer}' is a glob; use {name} for each matched layer's name, e.g. "{name}_${tap.reduce}"`,
        [`taps[${i}].as`],
      );
    }
    const re = globPattern(tap.layer);
    const matches = [...new Set(desc.layerNames.filter((n) => re.test(n)))];
    if (matches.length === 0) {
      throw new JobConfigError(`taps[${i}].layer: the pattern '${tap.layer}' matches no layer; \`layertap layers ${modelUri}\` lists them`, [
        `taps[${i}].layer`,
      ]);
    }
    return matches.map((layer) => {
      const name = defaultColumnName({ layer, at: tap.at });
      return { tap: { ...tap, layer, ...(tap.as !== undefined ? { as: tap.as.replaceAll('{name}', name) } : {}) }, i };
    });
  });
}

/** A model with at most this many layers has them listed in an unknown-layer error; a larger one gets the nearest names. */
const LISTED_LAYERS = 12;

/** `a`, `a or b`, `a, b or c`, each quoted. */
function orList(names: string[]): string {
  const q = names.map((n) => `'${n}'`);
  return q.length > 1 ? `${q.slice(0, -1).join(', ')} or ${q.at(-1)}` : (q[0] ?? '');
}

/** What to say after "unknown layer": the nearest names (up to 3), and the whole list, or the command that prints it. */
function unknownLayerHint(layer: string, names: readonly string[], modelUri: string): string {
  const near = nearestNames(layer, names, 3);
  const guess = near.length ? ` (did you mean ${orList(near)}?)` : '';
  if (names.length <= LISTED_LAYERS) return `${guess}; layers are: ${names.join(', ')}`;
  return `${guess}; \`layertap layers ${modelUri}\` lists them`;
}

/**
 * The job's taps against the model: globs expanded, layers that exist and can be tapped, a reduce
 * that fits the model (`text`: it takes input_ids), column names decided and distinct.
 */
export function resolveTaps(taps: TapConfig[], desc: ModelDescription, text: boolean, modelUri: string): ResolvedTap[] {
  const known = new Set(desc.layerNames);
  const seen = new Map<string, number>();
  return expandGlobs(taps, desc, modelUri).map(({ tap, i }) => {
    if (!known.has(tap.layer)) {
      throw new JobConfigError(`taps[${i}].layer: unknown layer '${tap.layer}'${unknownLayerHint(tap.layer, desc.layerNames, modelUri)}`, [`taps[${i}].layer`]);
    }
    try {
      // a listed name that still cannot be tapped, e.g. an ONNX module returning several tensors
      desc.checkTap?.(tap.layer, tap.at);
    } catch (err) {
      throw new JobConfigError(`taps[${i}].layer: ${(err as Error).message}`, [`taps[${i}].layer`]);
    }
    const problem = reduceProblem(tap, text);
    if (problem !== null) throw new JobConfigError(`taps[${i}].${problem.field}: ${problem.message}`, [`taps[${i}].${problem.field}`]);
    const as = tap.as ?? defaultColumnName(tap);
    if (as === 'id') throw new JobConfigError(`taps[${i}].as: 'id' is the row id column; choose another name`, [`taps[${i}].as`]);
    const prev = seen.get(as);
    if (prev !== undefined) {
      throw new JobConfigError(`taps[${i}].as: column '${as}' is also produced by taps[${prev}]; set a distinct 'as'`, [`taps[${i}].as`]);
    }
    seen.set(as, i);
    return { ...tap, as };
  });
}
