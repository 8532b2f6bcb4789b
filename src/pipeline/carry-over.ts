import type { TapOutput } from '../types/features.js';
import type { BaseLookup, BaseRun } from './incremental.js';
import { noRows, type FeatureRows } from './shard-rows.js';

/** A row whose vectors are copied from the base run instead of computed. */
export interface CarriedRow {
  pos: number;
  id: string;
  hash: string;
}

/** Carried rows with their vectors, read from the base run. */
interface CarriedVectors {
  pos: number[];
  ids: string[];
  hashes: string[];
  rows: Array<Record<string, Float32Array | Uint16Array>>;
}

/**
 * Third stage of an incremental shard: puts the rows carried over from the base run back among
 * the computed ones, in source order. Carried rows wait here until a computed batch that ends
 * after them is merged (or the shard ends); their vectors are then copied out of the base run's
 * part files as they are, bit for bit.
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
    const carried: CarriedVectors = { pos: [], ids: [], hashes: [], rows: [] };
    for (const c of take) {
      carried.pos.push(c.pos);
      carried.ids.push(c.id);
      carried.hashes.push(c.hash);
      carried.rows.push(await this.base.lookup.vectors(c.hash, this.columns));
    }
    this.merged += take.length;
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
  const n = a.pos.length + b.pos.length;
  const out: FeatureRows = { pos: new Array<number>(n), ids: new Array<string>(n), hashes: new Array<string>(n), taps: {} };
  const taps: Record<string, TapOutput> = out.taps;
  for (const c of columns) {
    const shape = shapes[c] ?? a.taps[c]?.shape;
    if (!shape) throw new Error(`no shape known for column '${c}'`);
    const per = shape.reduce((x, y) => x * y, 1);
    const sample = a.taps[c]?.data ?? b.rows[0]?.[c];
    const data = sample instanceof Uint16Array ? new Uint16Array(n * per) : new Float32Array(n * per);
    taps[c] = { data, shape };
  }
  let i = 0;
  let j = 0;
  for (let k = 0; k < n; k++) {
    const takeA = j >= b.pos.length || (i < a.pos.length && a.pos[i]! < b.pos[j]!);
    if (takeA) {
      out.pos[k] = a.pos[i]!;
      out.ids[k] = a.ids[i]!;
      out.hashes[k] = a.hashes[i]!;
      for (const c of columns) {
        const per = taps[c]!.data.length / n;
        taps[c]!.data.set(a.taps[c]!.data.subarray(i * per, (i + 1) * per) as never, k * per);
      }
      i++;
    } else {
      out.pos[k] = b.pos[j]!;
      out.ids[k] = b.ids[j]!;
      out.hashes[k] = b.hashes[j]!;
      for (const c of columns) {
        const per = taps[c]!.data.length / n;
        const v = b.rows[j]![c]!;
        if (v.length !== per) throw new Error(`carried vector of '${c}' has ${v.length} values, expected ${per}`);
        taps[c]!.data.set(v as never, k * per);
      }
      j++;
    }
  }
  return out;
}
