import type { ResolvedTap } from '../config/resolved.js';
import { columnLayout, type TapColumn } from '../types/features.js';

/**
 * What a tap's reduce does to the shape of an activation, in one place: the runners
 * (`tap-features.ts`, `token-features.ts`) pool by it, and `layertap plan` sizes columns by it,
 * so an estimate says what a run writes.
 */

/** Axes between the batch axis and the channel axis, the "spatial" ones a reduce pools over. */
export function spatialAxes(rank: number, layout: 'nhwc' | 'nchw'): number[] {
  if (rank <= 2) return [];
  const axes: number[] = [];
  const [first, last] = layout === 'nhwc' ? [1, rank - 2] : [2, rank - 1];
  for (let a = first; a <= last; a++) axes.push(a);
  return axes;
}

/** The axes a tap's reduce pools over in an activation of rank `rank`: the tap's own, else the layout's spatial ones. */
export function reduceAxes(tap: ResolvedTap, rank: number, layout: 'nhwc' | 'nchw'): number[] {
  if (tap.reduce === 'none') return [];
  if (!tap.axes) return spatialAxes(rank, layout);
  const bad = tap.axes.find((a) => a >= rank);
  if (bad !== undefined) {
    throw new Error(
      `tap '${tap.as}' (${tap.layer} at ${tap.at}): axes [${tap.axes.join(', ')}] name axis ${bad}, but the activation has ${rank} axes (0-${rank - 1}, 0 = batch)`,
    );
  }
  return tap.axes;
}

/** Per-row shape left of an activation `dims` (batch axis first) once the consecutive `axes` are pooled away. */
export function pooledRowShape<D extends number | null>(dims: readonly D[], axes: readonly number[]): D[] {
  const first = axes[0];
  const last = axes.at(-1);
  if (first === undefined || last === undefined) return dims.slice(1);
  return [...dims.slice(1, first), ...dims.slice(last + 1)];
}

/**
 * Whether a text model's activation is its token states, `[rows, tokens, D]`: those are pooled
 * over each row's real tokens (or kept as a ragged column), other outputs (a pooler's
 * `[rows, D]`) as any model's.
 */
export function isTokenStates(dims: readonly unknown[]): boolean {
  return dims.length === 3;
}

/** What a tap's activation is read by: the runtime's native layout, and whether the model is fed text. */
export interface TapShapeContext {
  layout: 'nhwc' | 'nchw';
  text: boolean;
}

/**
 * The column a tap writes from an activation of shape `dims` (batch axis first; null for a size
 * the model does not fix): its per-row shape after the reduce, and its layout.
 *
 * @example
 * tapColumn({ ...tap, reduce: 'mean' }, [null, 32, 11, 11], { layout: 'nchw', text: false }); // { shape: [32], layout: 'nchw' }
 * tapColumn({ ...tap, reduce: 'none' }, [null, null, 32], { layout: 'nchw', text: true });     // { shape: [null, 32], layout: 'tokens' }
 * tapColumn({ ...tap, reduce: 'mean' }, [null, null, 32], { layout: 'nchw', text: true });     // { shape: [32], layout: 'pooled' }
 */
export function tapColumn(tap: ResolvedTap, dims: ReadonlyArray<number | null>, ctx: TapShapeContext): TapColumn {
  if (ctx.text && isTokenStates(dims)) {
    const d = dims[2] ?? null;
    const ragged = tap.reduce === 'none';
    return { shape: ragged ? [null, d] : [d], layout: columnLayout(ragged, true, ctx.layout) };
  }
  // cls and last pick a token; an output without a token axis has none to pick, and is kept whole
  const pooled = ctx.text && (tap.reduce === 'cls' || tap.reduce === 'last') ? { ...tap, reduce: 'none' as const } : tap;
  return { shape: pooledRowShape(dims, reduceAxes(pooled, dims.length, ctx.layout)), layout: columnLayout(false, ctx.text, ctx.layout) };
}
