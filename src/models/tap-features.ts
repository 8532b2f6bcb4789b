import type { Tensor } from '@tensorflow/tfjs-core';
import type { ResolvedTap } from '../config/resolved.js';
import { toFloat16Array } from './float16.js';
import type { Tfjs } from './tfjs.js';
import type { TapOutput } from './types.js';

/** A tap's features as a [rows, features] tensor, with the per-row shape it had before flattening. */
export interface TapTensor {
  tensor: Tensor;
  shape: number[];
}

/** Axes between the batch axis and the channel axis, the "spatial" ones a reduce pools over. */
export function spatialAxes(rank: number, layout: 'nhwc' | 'nchw'): number[] {
  if (rank <= 2) return [];
  const axes: number[] = [];
  const [first, last] = layout === 'nhwc' ? [1, rank - 2] : [2, rank - 1];
  for (let a = first; a <= last; a++) axes.push(a);
  return axes;
}

/** Reduce, flatten and normalize one captured activation; call inside tf.tidy, which frees the intermediates. */
export function tapTensor(
  core: Tfjs['core'],
  activation: Tensor,
  tap: ResolvedTap,
  rows: number,
  layout: 'nhwc' | 'nchw',
): TapTensor {
  if (activation.rank === 0 || activation.shape[0] !== rows) {
    throw new Error(
      `tap '${tap.as}' (${tap.layer} at ${tap.at}) has shape [${activation.shape.join(', ')}], ` +
        `which has no batch axis of ${rows} rows; tap a layer whose output is per-row`,
    );
  }
  let x = activation.dtype === 'float32' ? activation : core.cast(activation, 'float32');
  const axes = tap.reduce === 'none' ? [] : spatialAxes(x.rank, layout);
  if (axes.length > 0) x = tap.reduce === 'mean' ? core.mean(x, axes) : core.max(x, axes);
  const shape = x.shape.slice(1);
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

/** Read a tap's features out of the backend in the tap's dtype. */
export async function tapOutput(features: TapTensor, tap: ResolvedTap): Promise<TapOutput> {
  const values = (await features.tensor.data()) as Float32Array;
  return {
    data: tap.dtype === 'float16' ? toFloat16Array(values) : owned(values),
    shape: features.shape,
  };
}
