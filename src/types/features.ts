/** Features of one tap for a batch: row-major [rows, ...shape] flattened. */
export interface TapOutput {
  /** Float32Array for float32, Uint16Array of IEEE half bits for float16 */
  data: Float32Array | Uint16Array;
  /** per-row shape after reduce, before flattening; for a ragged tap, the shape of one item ([D] per token) */
  shape: number[];
  /**
   * Ragged taps only (`reduce: none` on a text model's token states): how many items (tokens)
   * each row has; `data` holds the rows' items one after another, no padding.
   */
  lengths?: Int32Array;
}

/**
 * `layertap.layout` of a tap column: how a row's values are laid out. `nhwc` / `nchw`: the
 * runtime's native layout (TF.js / ONNX) of an image or tensor model's activation; `tokens`: a
 * ragged column of a text model, the row's real tokens of D values each; `pooled`: a text model's
 * fixed-size column, one vector per row (token states pooled over the row's real tokens as
 * `layertap.reduce` says, or an output without a token axis, such as a pooler's).
 */
export type TapLayout = 'nhwc' | 'nchw' | 'tokens' | 'pooled';

/** What a tap column holds per row, as its field metadata and the manifest record it. */
export interface TapColumn {
  /** per-row shape before flattening; a ragged column's is [null, D] (null: a length that varies by row) */
  shape: Array<number | null>;
  layout: TapLayout;
}

/**
 * The layout of a tap column: `tokens` when ragged, `pooled` for a text model's other columns,
 * else the runtime's native layout. The part files' schema, the manifest and `plan` all go by it.
 */
export function columnLayout(ragged: boolean, text: boolean, runtime: 'nhwc' | 'nchw'): TapLayout {
  return ragged ? 'tokens' : text ? 'pooled' : runtime;
}

/** Values per row of a fixed-size tap, or per item (token) of a ragged one. */
function itemSize(out: TapOutput): number {
  return out.shape.reduce((a, b) => a * b, 1);
}

/**
 * Rows of several tap outputs of one column, picked in the order given (`[output, row]` pairs),
 * as one output: how batches are reordered and rows dropped. Ragged outputs stay ragged.
 */
export function pickRows(outs: readonly TapOutput[], picks: ReadonlyArray<readonly [number, number]>): TapOutput {
  const first = outs[0];
  if (!first) throw new Error('pickRows: no outputs');
  const per = itemSize(first);
  // where each row's values start, per output
  const starts = outs.map((o) => {
    const rows = o.lengths?.length ?? o.data.length / per;
    const s = new Int32Array(rows + 1);
    for (let r = 0; r < rows; r++) s[r + 1] = s[r]! + (o.lengths ? o.lengths[r]! : 1) * per;
    return s;
  });
  let total = 0;
  for (const [o, r] of picks) total += starts[o]![r + 1]! - starts[o]![r]!;
  const data = first.data instanceof Float32Array ? new Float32Array(total) : new Uint16Array(total);
  let at = 0;
  for (const [o, r] of picks) {
    const src = outs[o]!.data.subarray(starts[o]![r]!, starts[o]![r + 1]!);
    data.set(src, at);
    at += src.length;
  }
  const out: TapOutput = { data, shape: first.shape };
  if (first.lengths) out.lengths = Int32Array.from(picks, ([o, r]) => outs[o]!.lengths![r]!);
  return out;
}
