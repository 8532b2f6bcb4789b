import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16, fromFloat16Array, toFloat16Array } from '../../../src/types/index.js';

const hex = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;

describe('float16 conversion', () => {
  it('round-trips every one of the 65536 half values (NaNs stay NaN)', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = float16ToFloat32(bits);
      const back = float32ToFloat16(value);
      if (Number.isNaN(value)) {
        expect((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0, hex(bits)).toBe(true);
      } else if (back !== bits) {
        throw new Error(`${hex(bits)} -> ${value} -> ${hex(back)}`);
      }
    }
  });

  it('encodes known values', () => {
    expect(hex(float32ToFloat16(1))).toBe('0x3c00');
    expect(hex(float32ToFloat16(-2))).toBe('0xc000');
    expect(hex(float32ToFloat16(0.1))).toBe('0x2e66');
    expect(hex(float32ToFloat16(65504))).toBe('0x7bff');
    expect(hex(float32ToFloat16(-0))).toBe('0x8000');
    expect(hex(float32ToFloat16(Infinity))).toBe('0x7c00');
    expect(hex(float32ToFloat16(-Infinity))).toBe('0xfc00');
    expect(hex(float32ToFloat16(1e10))).toBe('0x7c00');
    expect(hex(float32ToFloat16(2 ** -14))).toBe('0x0400'); // smallest normal
    expect(hex(float32ToFloat16(2 ** -24))).toBe('0x0001'); // smallest subnormal
    expect(hex(float32ToFloat16(1e-10))).toBe('0x0000');
    const nan = float32ToFloat16(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it('rounds to nearest, ties to even', () => {
    // halfway between 1 (even mantissa) and 1 + 2^-10: stays at 1
    expect(hex(float32ToFloat16(1 + 2 ** -11))).toBe('0x3c00');
    // halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even): goes up
    expect(hex(float32ToFloat16(1 + 3 * 2 ** -11))).toBe('0x3c02');
    // just above halfway goes up
    expect(hex(float32ToFloat16(1 + 2 ** -11 + 2 ** -20))).toBe('0x3c01');
    // halfway between 65504 and the next step (65536) overflows to infinity, as IEEE does
    expect(hex(float32ToFloat16(65520))).toBe('0x7c00');
    expect(hex(float32ToFloat16(65519))).toBe('0x7bff');
    // subnormal ties: 2^-25 is halfway between 0 and 2^-24 -> 0; 3 * 2^-25 between 1 and 2 ulps -> 2
    expect(hex(float32ToFloat16(2 ** -25))).toBe('0x0000');
    expect(hex(float32ToFloat16(1.5 * 2 ** -25))).toBe('0x0001');
    expect(hex(float32ToFloat16(3 * 2 ** -25))).toBe('0x0002');
    // the largest subnormal plus half an ulp rounds up into the smallest normal
    expect(hex(float32ToFloat16(2 ** -14 - 2 ** -25))).toBe('0x0400');
  });

  it('decodes known values', () => {
    expect(float16ToFloat32(0x3c00)).toBe(1);
    expect(float16ToFloat32(0x7bff)).toBe(65504);
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16ToFloat32(0x03ff)).toBe(2 ** -14 - 2 ** -24);
    expect(float16ToFloat32(0xfc00)).toBe(-Infinity);
    expect(Object.is(float16ToFloat32(0x8000), -0)).toBe(true);
    expect(Number.isNaN(float16ToFloat32(0x7e00))).toBe(true);
  });

  it('is within half an ulp of the input for random values', () => {
    for (let i = 0; i < 20000; i++) {
      const v = Math.fround((Math.random() - 0.5) * 2 ** (Math.random() * 30 - 15));
      const back = float16ToFloat32(float32ToFloat16(v));
      const exp = Math.max(Math.floor(Math.log2(Math.abs(v))), -14);
      const ulp = 2 ** (exp - 10);
      expect(Math.abs(back - v)).toBeLessThanOrEqual(ulp / 2);
    }
  });

  it('converts arrays both ways', () => {
    const bits = toFloat16Array(new Float32Array([0, 1, -1.5, 65504]));
    expect(bits).toBeInstanceOf(Uint16Array);
    expect(Array.from(bits, hex)).toEqual(['0x0000', '0x3c00', '0xbe00', '0x7bff']);
    expect(Array.from(fromFloat16Array(bits))).toEqual([0, 1, -1.5, 65504]);
  });
});
