import type { ExtraValue } from '../types/columns.js';
import { pickRows, type TapOutput } from '../types/features.js';
import type { BaseLookup, BaseRun, CarriedFeatures } from './incremental.js';
import { noRows, type FeatureRows } from './shard-rows.js';

/** A source row whose vectors are copied from the base run instead of computed. */
export interface CarriedRow {
  pos: number;
  id: string;
  hash: string;
  /** per output row (one, or a chunked document's chunks), its carried and chunk column values */
  extra: ExtraValue[][];
}

/** Carried rows with their features, read from the base run. */
interface CarriedVectors {
  pos: number[];
  ids: string[];
  hashes: string[];
  extra: ExtraValue[][];
  rows: Array<Record<string, CarriedFeatures>>;
}

/**
 * Third stage of an incremental shard: puts the rows carried over from the base run back among
 * the computed ones, in source order. Carried rows wait here until a computed batch that ends
 * after them is merged (or the shard ends); their features are then copied out of the base run's
 * part files as they are, bit for bit: a vector per row, or a list of token vectors in a ragged
 * column.
 */
export class CarryOverMerge {
  /** carried rows not merged yet, in source order */
  private readonly waiting: CarriedRow[] = [];
  /** per tap column, the per-row shape of the computed rows seen last */
  private shapes: Record<string, number[]> | null = null;
  private merged = 0;

  constructor(
    private readonly columns: string[],
    /** the base run and a lookup of its rows; null when the run is not incremental */
    private readonly base: { run: BaseRun; lookup: BaseLookup } | null,
  ) {}

  add(row: CarriedRow): void {
    this.waiting.push(row);
  }

  /** `computed` with every waiting carried row at a position up to `upTo` merged in. */
  async merge(computed: FeatureRows, upTo: number): Promise<FeatureRows> {
    if (computed.ids.length > 0) this.shapes = Object.fromEntries(this.columns.map((c) => [c, computed.taps[c]!.shape]));
    let n = 0;
    while (n < this.waiting.length && this.waiting[n]!.pos <= upTo) n++;
    if (n === 0 || !this.base) return computed;
    const take = this.waiting.splice(0, n);
    const carried: CarriedVectors = { pos: [], ids: [], hashes: [], extra: [], rows: [] };
    for (const c of take) {
      const rows = this.base.lookup.rowsOf(c.hash);
      if (rows !== c.extra.length) throw new Error(`row ${c.id}: ${c.extra.length} row(s) to carry over, but the base run has ${rows} for its content`);
      for (let k = 0; k < rows; k++) {
        carried.pos.push(c.pos);
        carried.ids.push(c.id);
        carried.hashes.push(c.hash);
        carried.extra.push(c.extra[k]!);
        carried.rows.push(await this.base.lookup.vectors(c.hash, this.columns, k));
      }
      this.merged += rows;
    }
    // rows computed in this shard give the shapes; before any, the base run's are the same (one fingerprint)
    return mergeRows(this.columns, computed, carried, this.shapes ?? this.base.run.shapes);
  }

  /** The carried rows after the last computed batch (every carried row of a shard where nothing changed). */
  rest(): Promise<FeatureRows> {
    return this.merge(noRows(), Number.POSITIVE_INFINITY);
  }

  /** Carried rows merged so far. */
  get carried(): number {
    return this.merged;
  }
}

/** Rows of features from two sources (computed and carried) merged into source order. */
function mergeRows(columns: string[], a: FeatureRows, b: CarriedVectors, shapes: Record<string, number[]>): FeatureRows {
  const out: FeatureRows = { pos: [], ids: [], hashes: [], taps: {}, extra: [] };
  // [0, i]: the computed row i; [1, j]: the carried row j
  const picks: Array<[number, number]> = [];
  let i = 0;
  let j = 0;
  while (i < a.pos.length || j < b.pos.length) {
    const takeA = j >= b.pos.length || (i < a.pos.length && a.pos[i]! < b.pos[j]!);
    const [from, k] = takeA ? [a, i++] : [b, j++];
    out.pos.push(from.pos[k]!);
    out.ids.push(from.ids[k]!);
    out.hashes.push(from.hashes[k]!);
    out.extra.push(from.extra[k] ?? []);
    picks.push([takeA ? 0 : 1, k]);
  }
  for (const c of columns) {
    const computed = a.ids.length > 0 ? a.taps[c] : undefined;
    if (a.ids.length > 0 && !computed) throw new Error(`the computed rows have no features for column '${c}'`);
    const shape = computed?.shape ?? shapes[c];
    if (!shape) throw new Error(`no shape known for column '${c}'`);
    const carried = carriedOutput(
      c,
      b.rows.map((r) => r[c]!),
      shape,
      computed,
    );
    out.taps[c] = pickRows([computed ?? carried, carried], picks);
  }
  return out;
}

/**
 * The carried rows' features of column `c` as one output, in the dtype and raggedness of the
 * computed rows when there are any (one fingerprint: the same as the base run's).
 */
function carriedOutput(c: string, rows: CarriedFeatures[], shape: number[], computed: TapOutput | undefined): TapOutput {
  const per = shape.reduce((x, y) => x * y, 1);
  const ragged = computed ? computed.lengths !== undefined : rows[0]?.items !== undefined;
  const half = computed ? computed.data instanceof Uint16Array : rows.some((r) => r.data instanceof Uint16Array);
  let total = 0;
  for (const r of rows) {
    if ((r.items !== undefined) !== ragged) {
      throw new Error(
        `carried features of '${c}' are ${r.items !== undefined ? 'a list of items' : 'one vector'} per row, but the run's are ${ragged ? 'lists' : 'vectors'}`,
      );
    }
    const expected = (r.items ?? 1) * per;
    if (r.data.length !== expected) throw new Error(`carried vector of '${c}' has ${r.data.length} values, expected ${expected}`);
    if (r.data.length > 0 && r.data instanceof Uint16Array !== half)
      throw new Error(`carried features of '${c}' are not ${half ? 'float16' : 'float32'} as the run's are`);
    total += r.data.length;
  }
  const data = half ? new Uint16Array(total) : new Float32Array(total);
  let at = 0;
  for (const r of rows) {
    data.set(r.data as never, at);
    at += r.data.length;
  }
  const out: TapOutput = { data, shape };
  if (ragged) out.lengths = Int32Array.from(rows, (r) => r.items!);
  return out;
}
