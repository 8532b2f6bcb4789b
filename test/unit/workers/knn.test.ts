import { describe, expect, it } from 'vitest';
import { knnGraph } from '../../../src/workers/knn.js';
import { fitPca, projectPca, seededRandom } from '../../../src/workers/pca.js';
import { normalizeInPlace } from '../../../src/workers/top-k.js';

/** n unit rows of dim values around `clusters` random centres. */
function clustered(n: number, dim: number, clusters: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: dim }, () => rand() * 2 - 1));
  const rows = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = centres[i % clusters]!;
    for (let j = 0; j < dim; j++) rows[i * dim + j] = c[j]! + (rand() - 0.5) * 0.6;
    normalizeInPlace(rows.subarray(i * dim, (i + 1) * dim));
  }
  return rows;
}

function exact(rows: Float32Array, dim: number, i: number, k: number): number[] {
  const n = rows.length / dim;
  const d: Array<[number, number]> = [];
  for (let j = 0; j < n; j++) {
    if (j === i) continue;
    let dot = 0;
    for (let t = 0; t < dim; t++) dot += rows[i * dim + t]! * rows[j * dim + t]!;
    d.push([j, 1 - dot]);
  }
  return d
    .sort((a, b) => a[1] - b[1] || a[0] - b[0])
    .slice(0, k)
    .map((p) => p[0]);
}

describe('knnGraph', () => {
  it('is exact for a small set: every row its k nearest others by cosine, nearest first', () => {
    const dim = 12;
    const rows = clustered(300, dim, 4, 1);
    const g = knnGraph(rows, dim, rows, dim, 5);
    for (const i of [0, 77, 299]) {
      expect(Array.from(g.ids.subarray(i * 5, i * 5 + 5))).toEqual(exact(rows, dim, i, 5));
      for (let s = 1; s < 5; s++) expect(g.distances[i * 5 + s]!).toBeGreaterThanOrEqual(g.distances[i * 5 + s - 1]!);
    }
  });

  it('finds most true neighbours of a large set through the trees and neighbour-of-neighbour rounds, with exact distances', () => {
    const dim = 48;
    const n = 6000;
    const rows = clustered(n, dim, 20, 2);
    const pca = fitPca(rows, dim, dim);
    const g = knnGraph(rows, dim, projectPca(pca, rows), dim, 10);
    let found = 0;
    const probes = Array.from({ length: 60 }, (_, p) => p * 97);
    for (const i of probes) {
      const want = new Set(exact(rows, dim, i, 10));
      const got = Array.from(g.ids.subarray(i * 10, i * 10 + 10));
      found += got.filter((j) => want.has(j)).length;
      // the distances given are the true cosine distances of the rows listed
      const j = got[0]!;
      let dot = 0;
      for (let t = 0; t < dim; t++) dot += rows[i * dim + t]! * rows[j * dim + t]!;
      expect(Math.abs(g.distances[i * 10]! - (1 - dot))).toBeLessThan(1e-5);
    }
    expect(found / (probes.length * 10)).toBeGreaterThan(0.9);
  });
});
