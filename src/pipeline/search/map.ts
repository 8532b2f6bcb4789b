import { Bool, DataType, Field, Float32, Float64, Int32, List, Struct, Table, tableToIPC, Utf8, makeVector, vectorFromArray, type Vector } from 'apache-arrow';
import { encodeParquet } from '../../sinks/parquet-file-writer.js';
import type { Cell } from '../../workers/scan-protocol.js';
import type { ScanPool } from '../../workers/scan-pool.js';
import { normalizeInPlace } from '../../workers/top-k.js';
import { SearchInputError } from './errors.js';
import type { KnnGraph } from '../../workers/knn.js';
import { seededRandom } from '../../workers/pca.js';
import { pickColumn, type RunRef } from './run-ref.js';

/** How a map places the rows: the two leading principal components, or UMAP. */
export type MapMethod = 'pca' | 'umap';
export const MAP_METHODS: readonly MapMethod[] = ['pca', 'umap'];

/** Options for {@link mapRun}. */
export interface MapOptions {
  pool: ScanPool;
  /** the tap column. @defaultValue the run's first vector column */
  tap?: string;
  /** @defaultValue 'pca' */
  method?: MapMethod;
  /** rows placed: a larger run is sampled uniformly (seeded). @defaultValue 100000 */
  maxPoints?: number;
  /** neighbours listed per point. @defaultValue 10 */
  neighbors?: number;
  /** @defaultValue 42 */
  seed?: number;
  /** told what the map is doing, for progress lines */
  onStage?: (stage: string) => void;
}

/** A 2-D map of (a sample of) a run's rows. */
export interface RunMap {
  runId: string;
  tap: string;
  method: MapMethod;
  /** rows of the run; the map has `ids.length` of them */
  rows: number;
  ids: string[];
  x: Float32Array;
  y: Float32Array;
  /** each point's nearest points by cosine, as positions in `ids` */
  neighbors: KnnGraph;
  /** the carried columns' names and each point's cells */
  carriedColumns: string[];
  carried: Array<Record<string, Cell>>;
}

/** Per part, which rows a uniform sample of `max` rows takes (null: all of them). */
function samplePlan(parts: RunRef['parts'], max: number, seed: number): Array<Int32Array | null> {
  const total = parts.reduce((a, p) => a + p.rows, 0);
  if (total <= max) return parts.map(() => null);
  const rand = seededRandom(seed);
  // largest-remainder shares, so the sample has exactly `max` rows
  const exact = parts.map((p) => (max * p.rows) / total);
  const take = exact.map(Math.floor);
  let left = max - take.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of byRemainder) {
    if (left === 0) break;
    if (take[i]! < parts[i]!.rows) {
      take[i]!++;
      left--;
    }
  }
  return parts.map((p, i) => {
    // a partial Fisher-Yates shuffle picks take[i] distinct positions
    const pos = Int32Array.from({ length: p.rows }, (_, r) => r);
    for (let s = 0; s < take[i]!; s++) {
      const j = s + Math.floor(rand() * (p.rows - s));
      [pos[s], pos[j]] = [pos[j]!, pos[s]!];
    }
    return pos.subarray(0, take[i]!).sort();
  });
}

/**
 * A 2-D map of a run's rows in one tap column, with each point's nearest neighbours: up to
 * `maxPoints` rows sampled uniformly from a run of any size, read by the pool's threads; rows are
 * taken at unit length (the cosine geometry of `neighbours`) and laid out in one of the pool's
 * threads ({@link mapLayout}): PCA by their two leading principal components, UMAP from the
 * neighbour graph.
 */
export async function mapRun(run: RunRef, opts: MapOptions): Promise<RunMap> {
  const tap = pickColumn(run, opts.tap);
  const method = opts.method ?? 'pca';
  if (!MAP_METHODS.includes(method)) throw new SearchInputError(`unknown method '${String(method)}'; methods are: ${MAP_METHODS.join(', ')}`, [...MAP_METHODS]);
  const seed = opts.seed ?? 42;
  const plan = samplePlan(run.parts, opts.maxPoints ?? 100_000, seed);
  opts.onStage?.(`reading ${plan.reduce((a, p, i) => a + (p ? p.length : run.parts[i]!.rows), 0)} rows`);
  const results = await Promise.all(
    run.parts.map((part, i) => opts.pool.rows({ part: { sink: run.sink, key: part.key }, tap, taps: run.taps, rows: plan[i] ?? null })),
  );
  const n = results.reduce((a, r) => a + r.ids.length, 0);
  const dim = results.find((r) => r.ids.length > 0)?.dim ?? 0;
  if (n < 2) throw new SearchInputError(`run ${run.manifest.runId} has ${n} row(s) in '${tap}': a map needs at least 2`);
  const full = new Float32Array(n * dim);
  const ids: string[] = [];
  const carried: Array<Record<string, Cell>> = [];
  let at = 0;
  for (const r of results) {
    full.set(r.data, at * dim);
    ids.push(...r.ids);
    carried.push(...r.carried);
    at += r.ids.length;
  }
  for (let i = 0; i < n; i++) normalizeInPlace(full.subarray(i * dim, (i + 1) * dim));

  opts.onStage?.(method === 'umap' ? 'neighbours and UMAP' : 'principal components and neighbours');
  const { x, y, neighbors } = await opts.pool.layout({ full, dim, method, k: opts.neighbors ?? 10, seed });
  const carriedColumns = [...new Set(carried.flatMap((c) => Object.keys(c)))];
  return { runId: run.manifest.runId, tap, method, rows: run.manifest.rows, ids, x, y, neighbors, carriedColumns, carried };
}

/** The Arrow type of a carried column, from its cells: numbers, booleans or text. */
function cellType(values: Cell[]): DataType {
  const set = values.filter((v) => v !== null);
  if (set.length > 0 && set.every((v) => typeof v === 'number')) return new Float64();
  if (set.length > 0 && set.every((v) => typeof v === 'boolean')) return new Bool();
  return new Utf8();
}

/**
 * The map as a table: `id, x, y, neighbors` and the carried columns. `neighbors` is
 * `{ids: [row positions], distances: [cosine distances]}`, the form embedding-atlas reads with
 * `--neighbors neighbors` (ids are zero-based row positions in this table).
 */
export function mapTable(map: RunMap): Table {
  const n = map.ids.length;
  const k = map.neighbors.k;
  const nbType = new Struct([
    new Field('ids', new List(new Field('item', new Int32(), false)), false),
    new Field('distances', new List(new Field('item', new Float32(), false)), false),
  ]);
  const nb = Array.from({ length: n }, (_, i) => {
    const ids: number[] = [];
    const distances: number[] = [];
    for (let s = 0; s < k; s++) {
      const j = map.neighbors.ids[i * k + s]!;
      if (j < 0) continue;
      ids.push(j);
      distances.push(map.neighbors.distances[i * k + s]!);
    }
    return { ids, distances };
  });
  const columns: Record<string, Vector> = {
    id: vectorFromArray(map.ids, new Utf8()),
    x: makeVector(map.x),
    y: makeVector(map.y),
    neighbors: vectorFromArray(nb, nbType),
  };
  for (const c of map.carriedColumns) {
    if (c in columns) continue;
    const values = map.carried.map((r) => r[c] ?? null);
    const type = cellType(values);
    columns[c] = vectorFromArray(DataType.isUtf8(type) ? values.map((v) => (v === null ? null : String(v))) : values, type) as Vector;
  }
  return new Table(columns);
}

/** The map as Parquet bytes ({@link mapTable}). */
export async function mapParquet(map: RunMap): Promise<Uint8Array> {
  const table = mapTable(map);
  return encodeParquet(tableToIPC(table, 'stream'), table.schema);
}
