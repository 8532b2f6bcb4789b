import { knnGraph, type KnnGraph } from './knn.js';
import { fitPca, projectPca, seededRandom } from './pca.js';

/** Components kept for the neighbour search and as UMAP's input. */
const REDUCED_DIMS = 32;
/** Rows the principal components are fitted on: enough for stable directions, bounded time. */
const PCA_FIT_ROWS = 5_000;

/** What a map is computed from: unit rows (n × dim) and how to place them. */
export interface LayoutInput {
  /** n × dim, each row at unit length */
  full: Float32Array;
  dim: number;
  method: 'pca' | 'umap';
  /** neighbours per point */
  k: number;
  seed: number;
}

/** Where each row goes on the map, and its nearest rows. */
export interface Layout {
  x: Float32Array;
  y: Float32Array;
  neighbors: KnnGraph;
}

/**
 * A 2-D layout of unit rows with their neighbour graph: the leading principal components (fitted
 * on up to 5 000 rows by randomized subspace iteration), the neighbours found in 32 of them
 * (`knnGraph`), and x, y either the first two components or UMAP (umap-js, seeded) over that graph.
 * CPU-bound for seconds to minutes: it runs in a scan thread, not in a server's event loop.
 */
export async function mapLayout(input: LayoutInput): Promise<Layout> {
  const { full, dim, method, seed } = input;
  const n = full.length / dim;
  const step = Math.max(1, Math.ceil(n / PCA_FIT_ROWS));
  const fitRows = step === 1 ? full : Float32Array.from({ length: Math.ceil(n / step) * dim }, (_, t) => full[Math.floor(t / dim) * step * dim + (t % dim)]!);
  const pca = fitPca(fitRows, dim, Math.min(REDUCED_DIMS, dim), { seed, iterations: 4 });
  const rdim = pca.components.length;
  const reduced = projectPca(pca, full);
  const neighbors = knnGraph(full, dim, reduced, rdim, Math.min(input.k, n - 1), { seed });
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  if (method === 'pca') {
    for (let i = 0; i < n; i++) {
      x[i] = reduced[i * rdim]!;
      y[i] = rdim > 1 ? reduced[i * rdim + 1]! : 0;
    }
  } else {
    const { UMAP } = await import('umap-js');
    const rows = Array.from({ length: n }, (_, i) => Array.from(reduced.subarray(i * rdim, (i + 1) * rdim)));
    const umap = new UMAP({ nComponents: 2, nNeighbors: neighbors.k, random: seededRandom(seed) });
    const nn = (a: ArrayLike<number>) => Array.from({ length: n }, (_, i) => Array.from({ length: neighbors.k }, (_, s) => a[i * neighbors.k + s]!));
    umap.setPrecomputedKNN(nn(neighbors.ids), nn(neighbors.distances));
    umap.fit(rows).forEach((p, i) => {
      x[i] = p[0]!;
      y[i] = p[1]!;
    });
  }
  return { x, y, neighbors };
}
