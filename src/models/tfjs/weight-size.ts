import type { WeightEntry, WeightsGroup } from './model-json.js';

const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  // quantized storage types
  uint8: 1,
  uint16: 2,
  float16: 2,
};

/** Bytes one weight occupies in the shard files; null when it cannot be known up front (strings). */
export function weightBytes(weight: WeightEntry): number | null {
  const storage = weight.quantization?.dtype ?? weight.dtype;
  const bytes = DTYPE_BYTES[storage];
  if (bytes === undefined) return null;
  return weight.shape.reduce((n, d) => n * d, 1) * bytes;
}

/** Bytes a manifest group's shard files must hold in total; null when a weight's size is variable. */
export function groupBytes(group: WeightsGroup): number | null {
  let total = 0;
  for (const weight of group.weights) {
    const bytes = weightBytes(weight);
    if (bytes === null) return null;
    total += bytes;
  }
  return total;
}
