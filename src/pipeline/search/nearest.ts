import type { Cell, Hit } from '../../workers/scan-protocol.js';
import type { ScanPool } from '../../workers/scan-pool.js';
import { normalizeInPlace, TopK } from '../../workers/top-k.js';
import { SearchInputError } from './errors.js';
import { pickColumn, type RunRef } from './run-ref.js';

export type { Cell, Hit };

/** Options for {@link nearestRows} and {@link neighbours}. */
export interface NearestOptions {
  /** the threads that read the part files */
  pool: ScanPool;
  /** rows per query. @defaultValue 10 */
  k?: number;
  /** the tap column. @defaultValue the run's first vector column */
  tap?: string;
  /** told after each part file, with the rows read so far and the run's rows */
  onProgress?: (rowsRead: number, rows: number) => void;
}

/** Runs `fn` over `items` with at most `limit` at once; stops taking new items once `stop()` says so. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !stop()) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(lanes);
}

/**
 * The k rows nearest by cosine to each query (`queries`: m vectors of the column's size, one after
 * another), exactly: every part file is read once, by the pool's threads, each keeping its k best;
 * here the parts' bests are merged. Memory: one part file per thread plus k rows per query.
 */
export async function nearestRows(
  run: RunRef,
  queries: Float32Array,
  opts: NearestOptions & { exclude?: Array<string | null> },
): Promise<{ tap: string; hits: Hit[][] }> {
  const tap = pickColumn(run, opts.tap);
  const k = opts.k ?? 10;
  const dim = columnSize(run, tap);
  if (dim !== null && queries.length % dim !== 0) throw new SearchInputError(`the query has ${queries.length} values; column '${tap}' has ${dim} per row`);
  const m = dim === null ? 1 : queries.length / dim;
  const unit = new Float32Array(queries);
  for (let a = 0; a < m; a++) normalizeInPlace(unit.subarray(a * (queries.length / m), (a + 1) * (queries.length / m)));
  const exclude = opts.exclude ?? Array.from({ length: m }, () => null);
  const tops = Array.from({ length: m }, () => new TopK<Hit>(k));
  const total = run.parts.reduce((a, p) => a + p.rows, 0);
  let read = 0;
  await eachLimited(run.parts, opts.pool.threads, async (part) => {
    const r = await opts.pool.nearest({ part: { sink: run.sink, key: part.key }, tap, taps: run.taps, queries: unit, k, exclude });
    r.hits.forEach((hits, a) => {
      for (const h of hits) tops[a]!.push(h.score, h);
    });
    read += r.rows;
    opts.onProgress?.(read, total);
  });
  return { tap, hits: tops.map((t) => t.sorted().map((s) => s.item)) };
}

/** Values per row of a tap column, from the manifest (null when it does not say). */
export function columnSize(run: RunRef, tap: string): number | null {
  const shape = run.manifest.taps?.find((t) => t.as === tap)?.shape;
  if (!shape || shape.some((d) => d === null)) return null;
  return (shape as number[]).reduce((a, b) => a * b, 1);
}

/** A row of the run by id: its vector in `tap` and its carried cells; fails naming the id when no part has it. */
export async function findRow(run: RunRef, id: string, tap: string, pool: ScanPool): Promise<{ vector: Float32Array; carried: Record<string, Cell> }> {
  let found: { vector: Float32Array; carried: Record<string, Cell> } | null = null;
  await eachLimited(
    run.parts,
    pool.threads,
    async (part) => {
      const r = await pool.find({ part: { sink: run.sink, key: part.key }, tap, taps: run.taps, id });
      if (r.found && !found) found = { vector: r.vector, carried: r.carried };
    },
    () => found !== null,
  );
  if (!found) throw new SearchInputError(`unknown id '${id}': no row of run ${run.manifest.runId} has it`);
  return found;
}

/** What `layertap neighbours` prints. */
export interface NeighboursResult {
  id: string;
  tap: string;
  /** the row's carried columns */
  carried: Record<string, Cell>;
  /** best first, the row itself excluded */
  neighbours: Hit[];
}

/** The k rows nearest by cosine to the row `id` of a run, the row itself excluded. */
export async function neighbours(run: RunRef, id: string, opts: NearestOptions): Promise<NeighboursResult> {
  const tap = pickColumn(run, opts.tap);
  const row = await findRow(run, id, tap, opts.pool);
  const { hits } = await nearestRows(run, row.vector, { ...opts, tap, exclude: [id] });
  return { id, tap, carried: row.carried, neighbours: hits[0]! };
}
