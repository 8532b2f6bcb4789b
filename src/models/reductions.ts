import type { Tensor } from '@tensorflow/tfjs-core';
import type { ResolvedTap } from '../config/resolved.js';
import type { ReduceMode } from '../config/schema.js';
import { columnLayout, type TapColumn, type TapOutput } from '../types/features.js';
import { toFloat16Array } from '../types/float16.js';

/**
 * Reductions, in one place: what each `reduce` mode does ({@link REDUCTIONS}), which taps it fits
 * ({@link reduceProblem}, asked by planning), the column it leaves ({@link tapColumn}: what
 * `layertap plan` sizes, and the shape the runners give, which the part files and the manifest
 * record), and its application to an activation held in an array, NCHW or NHWC ({@link tapValues}), or to a text
 * model's token states ({@link tokenTapValues}). TF.js pools on its backend with the same mode's
 * `tensor` op (tfjs/tap-tensor.ts).
 */

/** tfjs-core, as a pooling mode's TF.js op uses it (a type only: nothing here loads TF.js). */
type TfjsCore = typeof import('@tensorflow/tfjs-core');

/**
 * Folds `count` consecutive vectors of `width` values, the first at `src[at]`, into
 * `out[outAt .. outAt + width)`, one value per position of the vector. `count` is 0 for a text
 * row without real tokens.
 */
export type PoolFn = (src: Float32Array, at: number, count: number, width: number, out: Float32Array, outAt: number) => void;

/** What one `reduce` mode does to an activation. */
export type Reduction =
  /** keeps every value; a text model's token states become a ragged column of the real tokens */
  | { kind: 'keep' }
  /**
   * pools over the spatial axes of an image or tensor activation (those of its layout, or the
   * tap's `axes`) and over the real tokens of a text model's token states: `pool` on arrays,
   * `tensor` on a TF.js backend
   */
  | { kind: 'pool'; pool: PoolFn; tensor(core: TfjsCore, x: Tensor, axes: number[]): Tensor }
  /**
   * picks the token `token(realTokens)` of a text model's token states (text models only); an
   * output without a token axis (a pooler's) is kept whole
   */
  | { kind: 'pick'; token(realTokens: number): number };

/** Every `reduce` mode of the job file (config's REDUCE_MODES), by name. */
export const REDUCTIONS: { readonly [M in ReduceMode]: Reduction } = Object.freeze({
  none: { kind: 'keep' },
  mean: {
    kind: 'pool',
    pool: (src, at, count, width, out, outAt) => {
      for (let i = 0; i < width; i++) {
        // a double: a float32 sum over thousands of positions or tokens would lose digits
        let acc = 0;
        for (let t = 0, k = at + i; t < count; t++, k += width) acc += src[k]!;
        out[outAt + i] = count > 0 ? acc / count : 0;
      }
    },
    tensor: (core, x, axes) => core.mean(x, axes),
  },
  max: {
    kind: 'pool',
    pool: (src, at, count, width, out, outAt) => {
      for (let i = 0; i < width; i++) {
        let acc = count > 0 ? -Infinity : 0;
        for (let t = 0, k = at + i; t < count; t++, k += width) {
          const v = src[k]!;
          // a NaN wins, so that the row becomes an error row (features with NaN are) instead of hiding it
          if (v > acc || Number.isNaN(v)) acc = v;
        }
        out[outAt + i] = acc;
      }
    },
    tensor: (core, x, axes) => core.max(x, axes),
  },
  // sentence-transformers' pooling_mode_mean_sqrt_len_tokens: the sum over sqrt(count), so that longer texts weigh more
  mean_sqrt_len: {
    kind: 'pool',
    pool: (src, at, count, width, out, outAt) => {
      const scale = count > 0 ? 1 / Math.sqrt(count) : 0;
      for (let i = 0; i < width; i++) {
        let acc = 0;
        for (let t = 0, k = at + i; t < count; t++, k += width) acc += src[k]!;
        out[outAt + i] = acc * scale;
      }
    },
    tensor: (core, x, axes) => core.div(core.sum(x, axes), Math.sqrt(axes.reduce((n, a) => n * (x.shape[a] ?? 1), 1))),
  },
  cls: { kind: 'pick', token: () => 0 },
  last: { kind: 'pick', token: (real) => Math.max(0, real - 1) },
});

/** The entry of `mode` in {@link REDUCTIONS}. */
export function reductionOf(mode: ReduceMode): Reduction {
  return REDUCTIONS[mode];
}

/** `'a'`, `'a or b'`, `'a, b or c'`. */
function orList(names: readonly string[]): string {
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : (names[0] ?? '');
}

/** The modes whose entry is of one of `kinds`, in the table's order. */
function modesOf(...kinds: Array<Reduction['kind']>): string[] {
  return Object.entries(REDUCTIONS)
    .filter(([, r]) => kinds.includes(r.kind))
    .map(([name]) => name);
}

/**
 * Why a tap's `reduce` (or `axes`) does not fit its model, with the tap field at fault; null when
 * it fits. `text`: the model takes input_ids. Planning fails the job with it before any work.
 */
export function reduceProblem(tap: Pick<ResolvedTap, 'reduce' | 'axes'>, text: boolean): { field: 'reduce' | 'axes'; message: string } | null {
  const kind = reductionOf(tap.reduce).kind;
  if (!text && kind === 'pick') {
    return {
      field: 'reduce',
      message: `${tap.reduce} picks a token of a text model's output; this model takes no input_ids (use ${orList(modesOf('keep', 'pool'))})`,
    };
  }
  const axes = tap.axes;
  if (axes === undefined) return null;
  if (text) {
    return { field: 'axes', message: "on a text model reduce pools over each row's real tokens (axis 1); axes does not combine with it, remove axes" };
  }
  if (kind !== 'pool') return { field: 'axes', message: `axes are what reduce pools over; set reduce: ${orList(modesOf('pool'))}, or remove axes` };
  if (axes.some((a, k) => k > 0 && a !== axes[k - 1]! + 1)) {
    return { field: 'axes', message: `must be consecutive and ascending, like [1] or [2, 3]; got [${axes.join(', ')}]` };
  }
  return null;
}

/** Axes between the batch axis and the channel axis, the "spatial" ones a reduce pools over. */
export function spatialAxes(rank: number, layout: 'nhwc' | 'nchw'): number[] {
  if (rank <= 2) return [];
  const axes: number[] = [];
  const [first, last] = layout === 'nhwc' ? [1, rank - 2] : [2, rank - 1];
  for (let a = first; a <= last; a++) axes.push(a);
  return axes;
}

/**
 * The axes a tap's reduce pools over in an image or tensor activation of rank `rank`: the tap's
 * own, else the layout's spatial ones; none for a mode that does not pool.
 */
export function reduceAxes(tap: ResolvedTap, rank: number, layout: 'nhwc' | 'nchw'): number[] {
  if (reductionOf(tap.reduce).kind !== 'pool') return [];
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
    const ragged = reductionOf(tap.reduce).kind === 'keep';
    return { shape: ragged ? [null, d] : [d], layout: columnLayout(ragged, true, ctx.layout) };
  }
  // a pick has no token axis to pick from here: the output is kept whole
  return { shape: pooledRowShape(dims, reduceAxes(tap, dims.length, ctx.layout)), layout: columnLayout(false, ctx.text, ctx.layout) };
}

/** The error of a tapped activation that is not per-row (no batch axis of `rows`). */
export function notPerRow(tap: ResolvedTap, dims: readonly number[], rows: number): Error {
  return new Error(
    `tap '${tap.as}' (${tap.layer} at ${tap.at}) has shape [${dims.join(', ')}], ` +
      `which has no batch axis of ${rows} rows; tap a layer whose output is per-row`,
  );
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * Pools `values`, row-major of shape `dims`, over `axes` (consecutive, at least one) with a
 * pooling mode: `[outer..., pooled..., inner...]` becomes `[outer..., inner...]`. Returns a new array.
 */
export function poolAxes(
  values: Float32Array,
  dims: readonly number[],
  axes: readonly number[],
  reduction: Extract<Reduction, { kind: 'pool' }>,
): Float32Array {
  const first = axes[0]!;
  const last = axes.at(-1)!;
  const outer = product(dims.slice(0, first));
  const size = product(dims.slice(first, last + 1));
  const inner = product(dims.slice(last + 1));
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) reduction.pool(values, o * size * inner, size, inner, out, o * inner);
  return out;
}

/**
 * One vector per row of token states `[rows, tokens, D]`, from each row's first `lengths[r]`
 * tokens (rows are padded on the right) with a pooling or picking mode. Returns `rows x D` values.
 */
export function reduceTokens(
  values: Float32Array,
  dims: readonly number[],
  lengths: Int32Array,
  reduction: Exclude<Reduction, { kind: 'keep' }>,
): Float32Array {
  const [rows = 0, tokens = 0, d = 0] = dims;
  const out = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const len = lengths[r]!;
    const base = r * tokens * d;
    if (reduction.kind === 'pool') reduction.pool(values, base, len, d, out, r * d);
    else {
      const t = reduction.token(len);
      out.set(values.subarray(base + t * d, base + (t + 1) * d), r * d);
    }
  }
  return out;
}

/**
 * Divides each run of `per` values by its L2 norm into `into` (a new array unless given; `x`
 * itself to normalize in place). An all-zero run stays all zero instead of becoming NaN.
 */
export function l2(x: Float32Array, per: number, into: Float32Array = new Float32Array(x.length)): Float32Array {
  for (let at = 0; at < x.length; at += per) {
    let sum = 0;
    for (let k = at; k < at + per; k++) sum += x[k]! ** 2;
    const norm = sum > 0 ? Math.sqrt(sum) : 1;
    for (let k = at; k < at + per; k++) into[k] = x[k]! / norm;
  }
  return into;
}

/** A typed array that owns its whole buffer, so that it can be transferred between threads. */
function owned(values: Float32Array): Float32Array {
  return values.byteOffset === 0 && values.byteLength === values.buffer.byteLength ? values : values.slice();
}

/** A tap's [rows, features] values and per-row shape as a TapOutput in the tap's dtype. */
export function encodeTap(values: Float32Array, shape: number[], tap: ResolvedTap): TapOutput {
  return { data: tap.dtype === 'float16' ? toFloat16Array(values) : owned(values), shape };
}

/**
 * A tap's features from an image or tensor model's activation held in a plain row-major array of
 * shape `dims` (runtimes other than TF.js): reduced over the tap's axes (else the spatial axes of
 * `layout`), flattened, normalized. Returns new arrays whenever it changes values, so `values`
 * may be shared by several taps.
 */
export function tapValues(
  values: Float32Array,
  dims: readonly number[],
  tap: ResolvedTap,
  rows: number,
  layout: 'nhwc' | 'nchw',
): { values: Float32Array; shape: number[] } {
  if (dims.length === 0 || dims[0] !== rows || values.length !== product(dims)) throw notPerRow(tap, dims, rows);
  const shape = tapColumn(tap, dims, { layout, text: false }).shape as number[];
  const reduction = reductionOf(tap.reduce);
  const axes = reduceAxes(tap, dims.length, layout);
  let x = axes.length > 0 && reduction.kind === 'pool' ? poolAxes(values, dims, axes, reduction) : values;
  if (tap.normalize === 'l2') x = l2(x, x.length / rows);
  return { values: x, shape };
}

/**
 * A tap's features from a text model's activation: a `[rows, tokens, D]` output is pooled over
 * each row's real tokens (`lengths[r]` of them, the first ones: rows are padded on the right) --
 * `mean`, `max`, `mean_sqrt_len` (sum / sqrt(tokens)), `cls` (first token), `last` (last real
 * token) -- or, with `none`, kept as the
 * row's real tokens one after another (a ragged output with `lengths`). Other outputs (a pooler's
 * `[rows, D]`) go through {@link tapValues} as for any model.
 *
 * @example
 * // 2 rows padded to 3 tokens of D = 2; row 0 has 2 real tokens, row 1 has 3
 * tokenTapValues(states, [2, 3, 2], Int32Array.of(2, 3), { ...tap, reduce: 'mean' }); // shape [2], 4 values
 */
export function tokenTapValues(
  values: Float32Array,
  dims: readonly number[],
  lengths: Int32Array,
  tap: ResolvedTap,
  /** the runner's native layout, for outputs without a token axis. @defaultValue 'nchw' (ONNX) */
  layout: 'nhwc' | 'nchw' = 'nchw',
): TapOutput {
  const rows = lengths.length;
  const [n, tokens, d] = dims;
  if (!isTokenStates(dims) || n !== rows || tokens === undefined || d === undefined || !lengths.every((l) => l <= tokens)) {
    // not a token axis (a pooler's [rows, D]): reduced as any model's output; a pick keeps it whole
    const plain = tapValues(values, dims, tap, rows, layout);
    return encodeTap(plain.values, plain.shape, tap);
  }
  const reduction = reductionOf(tap.reduce);
  if (reduction.kind === 'keep') {
    let total = 0;
    for (const l of lengths) total += l;
    const out = new Float32Array(total * d);
    let at = 0;
    for (let r = 0; r < rows; r++) {
      const len = lengths[r]!;
      out.set(values.subarray(r * tokens * d, (r * tokens + len) * d), at);
      at += len * d;
    }
    return { ...encodeTap(tap.normalize === 'l2' ? l2(out, d, out) : out, [d], tap), lengths: Int32Array.from(lengths) };
  }
  const out = reduceTokens(values, dims, lengths, reduction);
  // [d]: the batch's dims are all sizes
  return encodeTap(tap.normalize === 'l2' ? l2(out, d, out) : out, tapColumn(tap, dims, { layout, text: true }).shape as number[], tap);
}
