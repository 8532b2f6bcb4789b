import type { ResolvedTap } from '../config/resolved.js';
import { encodeTap, tapValues } from './tfjs/tap-tensor.js';
import { isTokenStates, tapColumn } from './reductions.js';
import type { TapOutput } from './types.js';

/** Divides each run of `per` values by its L2 norm, in place; an all-zero run stays zero. */
function l2InPlace(x: Float32Array, per: number): void {
  for (let at = 0; at < x.length; at += per) {
    let sum = 0;
    for (let k = at; k < at + per; k++) sum += x[k]! * x[k]!;
    if (sum === 0) continue;
    const inv = 1 / Math.sqrt(sum);
    for (let k = at; k < at + per; k++) x[k] = x[k]! * inv;
  }
}

/**
 * A tap's features from a text model's activation: a `[rows, tokens, D]` output is pooled over
 * each row's real tokens (`lengths[r]` of them, the first ones: rows are padded on the right) --
 * `mean`, `max`, `cls` (first token), `last` (last real token) -- or, with `none`, kept as the
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
    // not a token axis (a pooler's [rows, D]): pooled as any model's output; cls and last have nothing to pick from
    const plain = tapValues(values, dims, tap.reduce === 'cls' || tap.reduce === 'last' ? { ...tap, reduce: 'none' } : tap, rows, layout);
    return encodeTap(plain.values, plain.shape, tap);
  }
  const column = tapColumn(tap, dims, { layout, text: true });
  if (column.layout === 'tokens') {
    let total = 0;
    for (const l of lengths) total += l;
    const out = new Float32Array(total * d);
    let at = 0;
    for (let r = 0; r < rows; r++) {
      const len = lengths[r]!;
      out.set(values.subarray(r * tokens * d, (r * tokens + len) * d), at);
      at += len * d;
    }
    if (tap.normalize === 'l2') l2InPlace(out, d);
    return { ...encodeTap(out, [d], tap), lengths: Int32Array.from(lengths) };
  }
  const out = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const len = lengths[r]!;
    const base = r * tokens * d;
    const dst = out.subarray(r * d, (r + 1) * d);
    if (tap.reduce === 'cls' || tap.reduce === 'last') {
      const t = tap.reduce === 'cls' ? 0 : Math.max(0, len - 1);
      dst.set(values.subarray(base + t * d, base + (t + 1) * d));
    } else if (tap.reduce === 'mean') {
      for (let t = 0; t < len; t++) for (let k = 0; k < d; k++) dst[k] = dst[k]! + values[base + t * d + k]!;
      if (len > 0) for (let k = 0; k < d; k++) dst[k] = dst[k]! / len;
    } else {
      dst.fill(len > 0 ? -Infinity : 0);
      for (let t = 0; t < len; t++) {
        for (let k = 0; k < d; k++) {
          const v = values[base + t * d + k]!;
          if (v > dst[k]! || Number.isNaN(v)) dst[k] = v;
        }
      }
    }
  }
  if (tap.normalize === 'l2') l2InPlace(out, d);
  // [d]: the batch's dims are all sizes
  return encodeTap(out, column.shape as number[], tap);
}
