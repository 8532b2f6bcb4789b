import type { Tensor } from '@tensorflow/tfjs-core';
import type { ResolvedTap } from '../../config/resolved.js';
import { toFloat16Array } from '../../types/float16.js';
import { reduceAxes, tapColumn } from '../reductions.js';
import type { Tfjs } from './tfjs.js';
import type { TapOutput } from '../types.js';

/** A tap's features as a [rows, features] tensor, with the per-row shape it had before flattening. */
export interface TapTensor {
  tensor: Tensor;
  shape: number[];
}

/** Reduce, flatten and normalize one captured activation; call inside tf.tidy, which frees the intermediates. */
export function tapTensor(core: Tfjs['core'], activation: Tensor, tap: ResolvedTap, rows: number, layout: 'nhwc' | 'nchw'): TapTensor {
  if (activation.rank === 0 || activation.shape[0] !== rows) {
    throw new Error(
      `tap '${tap.as}' (${tap.layer} at ${tap.at}) has shape [${activation.shape.join(', ')}], ` +
        `which has no batch axis of ${rows} rows; tap a layer whose output is per-row`,
    );
  }
  let x = activation.dtype === 'float32' ? activation : core.cast(activation, 'float32');
  const axes = reduceAxes(tap, x.rank, layout);
  if (axes.length > 0) x = tap.reduce === 'mean' ? core.mean(x, axes) : core.max(x, axes);
  const shape = rowShape(tap, activation.shape, layout);
  x = core.reshape(x, [rows, -1]);
  if (tap.normalize === 'l2') {
    const norm = core.sqrt(core.sum(core.square(x), 1, true));
    // an all-zero row stays all zero instead of becoming NaN
    const safe = core.where(core.greater(norm, 0), norm, core.onesLike(norm));
    x = core.div(x, safe);
  }
  return { tensor: x, shape };
}

/** A typed array that owns its whole buffer, so that it can be transferred between threads. */
function owned(values: Float32Array): Float32Array {
  return values.byteOffset === 0 && values.byteLength === values.buffer.byteLength ? values : values.slice();
}

/** A tap's [rows, features] values and per-row shape as a TapOutput in the tap's dtype. */
export function encodeTap(values: Float32Array, shape: number[], tap: ResolvedTap): TapOutput {
  return { data: tap.dtype === 'float16' ? toFloat16Array(values) : owned(values), shape };
}

/** Read a tap's features out of the backend in the tap's dtype. */
export async function tapOutput(features: TapTensor, tap: ResolvedTap): Promise<TapOutput> {
  return encodeTap((await features.tensor.data()) as Float32Array, features.shape, tap);
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** The per-row shape a tap writes from an image or tensor model's activation (see {@link tapColumn}). */
function rowShape(tap: ResolvedTap, dims: readonly number[], layout: 'nhwc' | 'nchw'): number[] {
  return tapColumn(tap, dims, { layout, text: false }).shape as number[];
}

/**
 * {@link tapTensor} for an activation held in a plain row-major array of shape `dims` (runtimes
 * other than TF.js): reduce over the tap's axes (else the spatial axes of `layout`), flatten, normalize. Returns new
 * arrays whenever it changes values, so `values` may be shared by several taps.
 */
export function tapValues(
  values: Float32Array,
  dims: readonly number[],
  tap: ResolvedTap,
  rows: number,
  layout: 'nhwc' | 'nchw',
): { values: Float32Array; shape: number[] } {
  if (dims.length === 0 || dims[0] !== rows || values.length !== product(dims)) {
    throw new Error(
      `tap '${tap.as}' (${tap.layer} at ${tap.at}) has shape [${dims.join(', ')}], ` +
        `which has no batch axis of ${rows} rows; tap a layer whose output is per-row`,
    );
  }
  let x = values;
  const shape = rowShape(tap, dims, layout);
  const axes = reduceAxes(tap, dims.length, layout);
  const first = axes[0];
  const last = axes.at(-1);
  if (first !== undefined && last !== undefined) {
    // the pooled axes are consecutive (the layout's spatial ones, or a tap's own axes): [outer..., pooled..., inner...]
    const outer = product(dims.slice(0, first));
    const size = product(dims.slice(first, last + 1));
    const inner = product(dims.slice(last + 1));
    const out = new Float32Array(outer * inner);
    const mean = tap.reduce === 'mean';
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let acc = mean ? 0 : -Infinity;
        for (let k = 0, at = o * size * inner + i; k < size; k++, at += inner) {
          const v = x[at] as number;
          acc = mean ? acc + v : v > acc || Number.isNaN(v) ? v : acc;
        }
        out[o * inner + i] = mean ? acc / size : acc;
      }
    }
    x = out;
  }
  if (tap.normalize === 'l2') {
    const per = x.length / rows;
    const out = new Float32Array(x.length);
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let k = r * per; k < (r + 1) * per; k++) sum += (x[k] as number) ** 2;
      // an all-zero row stays all zero instead of becoming NaN
      const norm = sum > 0 ? Math.sqrt(sum) : 1;
      for (let k = r * per; k < (r + 1) * per; k++) out[k] = (x[k] as number) / norm;
    }
    x = out;
  }
  return { values: x, shape };
}
