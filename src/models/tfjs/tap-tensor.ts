import type { Tensor } from '@tensorflow/tfjs-core';
import type { ResolvedTap } from '../../config/resolved.js';
import { encodeTap, notPerRow, reduceAxes, reductionOf, tapColumn } from '../reductions.js';
import type { Tfjs } from './tfjs.js';
import type { TapOutput } from '../types.js';

/** A tap's features as a [rows, features] tensor, with the per-row shape it had before flattening. */
export interface TapTensor {
  tensor: Tensor;
  shape: number[];
}

/**
 * Reduce (with the mode's TF.js op, on the backend), flatten and normalize one captured
 * activation; call inside tf.tidy, which frees the intermediates. What the modes do and the
 * shape they leave are models/reductions.ts's; tapValues there is the plain-array twin.
 */
export function tapTensor(core: Tfjs['core'], activation: Tensor, tap: ResolvedTap, rows: number, layout: 'nhwc' | 'nchw'): TapTensor {
  if (activation.rank === 0 || activation.shape[0] !== rows) throw notPerRow(tap, activation.shape, rows);
  let x = activation.dtype === 'float32' ? activation : core.cast(activation, 'float32');
  const reduction = reductionOf(tap.reduce);
  const axes = reduceAxes(tap, x.rank, layout);
  if (axes.length > 0 && reduction.kind === 'pool') x = reduction.tensor(core, x, axes);
  const shape = tapColumn(tap, activation.shape, { layout, text: false }).shape as number[];
  x = core.reshape(x, [rows, -1]);
  if (tap.normalize === 'l2') {
    const norm = core.sqrt(core.sum(core.square(x), 1, true));
    // an all-zero row stays all zero instead of becoming NaN
    const safe = core.where(core.greater(norm, 0), norm, core.onesLike(norm));
    x = core.div(x, safe);
  }
  return { tensor: x, shape };
}

/** Read a tap's features out of the backend in the tap's dtype. */
export async function tapOutput(features: TapTensor, tap: ResolvedTap): Promise<TapOutput> {
  return encodeTap((await features.tensor.data()) as Float32Array, features.shape, tap);
}
