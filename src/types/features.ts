/** Features of one tap for a batch: row-major [rows, ...shape] flattened. */
export interface TapOutput {
  /** Float32Array for float32, Uint16Array of IEEE half bits for float16 */
  data: Float32Array | Uint16Array;
  /** per-row shape after reduce, before flattening */
  shape: number[];
}
