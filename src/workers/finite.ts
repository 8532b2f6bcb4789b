/**
 * Position of the first NaN or infinite value in `values[start, end)`, or -1. `x * 0` is NaN
 * exactly when x is NaN or infinite, so a sum of those finds one without a branch per value
 * (four sums, so that the additions do not wait on each other); the exact place is looked up
 * only in a row that has one.
 */
export function firstNonFinite(values: Float32Array, start: number, end: number): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let k = start;
  for (; k + 3 < end; k += 4) {
    a += values[k]! * 0;
    b += values[k + 1]! * 0;
    c += values[k + 2]! * 0;
    d += values[k + 3]! * 0;
  }
  for (; k < end; k++) a += values[k]! * 0;
  if (a + b + c + d === 0) return -1;
  for (k = start; k < end; k++) if (!Number.isFinite(values[k]!)) return k - start;
  return -1;
}
