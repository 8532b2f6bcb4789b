import { float16ToFloat32, float32ToFloat16 } from '../models/float16.js';

/** IEEE 754 half-precision bits of a number, rounded to nearest-even (as numpy's astype(float16)). */
export const toHalfBits = float32ToFloat16;

/** The number a half-precision bit pattern stands for. */
export const fromHalfBits = float16ToFloat32;

/** Converts float32 values to half bits, into `out` when given. */
export function float32ToHalfBits(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = float32ToFloat16(src[i] as number);
  return out;
}

/** Converts half bits to float32 values, into `out` when given. */
export function halfBitsToFloat32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = float16ToFloat32(src[i] as number);
  return out;
}
