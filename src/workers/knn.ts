import { seededRandom } from './pca.js';

/** Every row's k nearest other rows: ids (row positions) and cosine distances (1 - cosine), nearest first. */
export interface KnnGraph {
  k: number;
  /** n × k row positions; -1 where a row has fewer than k others */
  ids: Int32Array;
  /** n × k cosine distances */
  distances: Float32Array;
}

/** Options for {@link knnGraph}. */
export interface KnnOptions {
  /** up to this many rows the graph is exact (every pair compared in full). @defaultValue 3000 */
  exactUpTo?: number;
  /** random projection trees that propose candidates. @defaultValue 4 */
  trees?: number;
  /** rows per tree leaf. @defaultValue 40 */
  leafSize?: number;
  /** most neighbour-of-neighbour rounds after the trees (they stop once a round changes under 0.1% of the graph). @defaultValue 3 */
  rounds?: number;
  seed?: number;
}

/** Per row, the k best candidates so far (smallest distance), unordered, without repeats. */
class Candidates {
  readonly ids: Int32Array;
  readonly dist: Float32Array;
  constructor(
    readonly n: number,
    readonly k: number,
  ) {
    this.ids = new Int32Array(n * k).fill(-1);
    this.dist = new Float32Array(n * k).fill(Infinity);
  }

  /** offer j as a neighbour of i at distance d; true when it was taken */
  offer(i: number, j: number, d: number): boolean {
    const base = i * this.k;
    let worst = base;
    for (let s = base; s < base + this.k; s++) {
      if (this.ids[s] === j) return false;
      if (this.dist[s]! > this.dist[worst]!) worst = s;
    }
    if (d >= this.dist[worst]!) return false;
    this.ids[worst] = j;
    this.dist[worst] = d;
    return true;
  }
}

function sqDist(a: Float32Array, i: number, j: number, dim: number): number {
  let s = 0;
  const bi = i * dim;
  const bj = j * dim;
  for (let t = 0; t < dim; t++) {
    const d = a[bi + t]! - a[bj + t]!;
    s += d * d;
  }
  return s;
}

/** 1 - cosine of two unit rows. */
function cosDist(a: Float32Array, i: number, j: number, dim: number): number {
  let dot = 0;
  const bi = i * dim;
  const bj = j * dim;
  for (let t = 0; t < dim; t++) dot += a[bi + t]! * a[bj + t]!;
  return 1 - dot;
}

/** Leaves of one random projection tree over `rows` (n × dim): split by the hyperplane between two random rows until a leaf is small. */
function treeLeaves(rows: Float32Array, dim: number, leafSize: number, rand: () => number): Int32Array[] {
  const n = rows.length / dim;
  const leaves: Int32Array[] = [];
  const stack: Int32Array[] = [Int32Array.from({ length: n }, (_, i) => i)];
  while (stack.length > 0) {
    const idx = stack.pop()!;
    if (idx.length <= leafSize) {
      leaves.push(idx);
      continue;
    }
    const a = idx[Math.floor(rand() * idx.length)]!;
    let b = idx[Math.floor(rand() * idx.length)]!;
    for (let tries = 0; tries < 8 && (b === a || sqDist(rows, a, b, dim) === 0); tries++) b = idx[Math.floor(rand() * idx.length)]!;
    const side = new Float32Array(idx.length);
    for (let s = 0; s < idx.length; s++) {
      const r = idx[s]!;
      // sign of (x - (a+b)/2) · (a - b): which of a, b the row is nearer to
      side[s] = sqDist(rows, r, b, dim) - sqDist(rows, r, a, dim);
    }
    let left = idx.filter((_, s) => side[s]! > 0);
    let right = idx.filter((_, s) => side[s]! <= 0);
    // equal rows (or an unlucky pair) cannot be split by distance: halve at random instead
    if (left.length === 0 || right.length === 0) {
      const shuffled = Int32Array.from(idx).sort(() => rand() - 0.5);
      left = shuffled.subarray(0, idx.length >> 1);
      right = shuffled.subarray(idx.length >> 1);
    }
    stack.push(left, right);
  }
  return leaves;
}

/**
 * The k nearest neighbours of every row by cosine. `full` holds the rows at unit length (n × dim).
 * Up to `exactUpTo` rows every pair is compared; above, candidates come from random projection
 * trees and neighbour-of-neighbour rounds over each row's neighbours and reverse neighbours
 * (NN-descent), compared in `reduced` (n × rdim: the unit rows' leading principal components,
 * where euclidean distance ranks as cosine does in full when they keep the variance); the
 * distances given are computed in full. Above `exactUpTo` the graph is approximate.
 */
export function knnGraph(full: Float32Array, dim: number, reduced: Float32Array, rdim: number, k: number, opts: KnnOptions = {}): KnnGraph {
  const n = full.length / dim;
  const k1 = Math.max(1, Math.min(k, n - 1));
  if (n <= (opts.exactUpTo ?? 3000)) {
    const cand = new Candidates(n, k1);
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const d = cosDist(full, i, j, dim);
        cand.offer(i, j, d);
        cand.offer(j, i, d);
      }
    }
    return sortedGraph(cand);
  }
  const kk = k1;
  const cand = new Candidates(n, kk);
  {
    const rand = seededRandom(opts.seed ?? 7);
    for (let t = 0; t < (opts.trees ?? 4); t++) {
      for (const leaf of treeLeaves(reduced, rdim, opts.leafSize ?? 40, rand)) {
        for (let a = 0; a < leaf.length; a++) {
          for (let b = a + 1; b < leaf.length; b++) {
            const d = sqDist(reduced, leaf[a]!, leaf[b]!, rdim);
            cand.offer(leaf[a]!, leaf[b]!, d);
            cand.offer(leaf[b]!, leaf[a]!, d);
          }
        }
      }
    }
    for (let round = 0; round < (opts.rounds ?? 3); round++) {
      // each row's neighbours and (up to k of) the rows that have it as a neighbour
      const near = new Int32Array(n * 2 * kk).fill(-1);
      const fill = new Int32Array(n);
      for (let i = 0; i < n; i++) for (let s = 0; s < kk; s++) near[i * 2 * kk + s] = cand.ids[i * kk + s]!;
      for (let i = 0; i < n; i++) {
        for (let s = 0; s < kk; s++) {
          const j = cand.ids[i * kk + s]!;
          if (j >= 0 && fill[j]! < kk) near[j * 2 * kk + kk + fill[j]!++] = i;
        }
      }
      let changed = 0;
      for (let i = 0; i < n; i++) {
        for (let s = 0; s < 2 * kk; s++) {
          const j = near[i * 2 * kk + s]!;
          if (j < 0) continue;
          for (let u = 0; u < 2 * kk; u++) {
            const l = near[j * 2 * kk + u]!;
            if (l < 0 || l === i) continue;
            if (cand.offer(i, l, sqDist(reduced, i, l, rdim))) changed++;
          }
        }
      }
      if (changed <= n * kk * 0.001) break;
    }
  }
  // the neighbours found, at their distance in full
  for (let s = 0; s < n * kk; s++) {
    const j = cand.ids[s]!;
    if (j >= 0) cand.dist[s] = cosDist(full, Math.floor(s / kk), j, dim);
  }
  return sortedGraph(cand);
}

/** The candidates as a graph, each row's neighbours nearest first. */
function sortedGraph(cand: Candidates): KnnGraph {
  const { n, k: kk } = cand;
  const ids = new Int32Array(n * kk);
  const distances = new Float32Array(n * kk);
  for (let i = 0; i < n; i++) {
    const order = Array.from({ length: kk }, (_, s) => i * kk + s).sort((a, b) => cand.dist[a]! - cand.dist[b]! || cand.ids[a]! - cand.ids[b]!);
    order.forEach((s, r) => {
      ids[i * kk + r] = cand.ids[s]!;
      distances[i * kk + r] = cand.ids[s]! < 0 ? NaN : Math.max(0, cand.dist[s]!);
    });
  }
  return { k: kk, ids, distances };
}
