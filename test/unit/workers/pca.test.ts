import { describe, expect, it } from 'vitest';
import { fitPca, projectPca, seededRandom, symmetricEigen } from '../../../src/workers/pca.js';

/** Two orthonormal vectors of `dim` values, from a seed. */
function plane(dim: number, seed: number): [Float64Array, Float64Array] {
  const rand = seededRandom(seed);
  const u = Float64Array.from({ length: dim }, () => rand() - 0.5);
  const v = Float64Array.from({ length: dim }, () => rand() - 0.5);
  const nu = Math.hypot(...u);
  for (let j = 0; j < dim; j++) u[j] = u[j]! / nu;
  const d = u.reduce((s, x, j) => s + x * v[j]!, 0);
  for (let j = 0; j < dim; j++) v[j] = v[j]! - d * u[j]!;
  const nv = Math.hypot(...v);
  for (let j = 0; j < dim; j++) v[j] = v[j]! / nv;
  return [u, v];
}

describe('PCA', () => {
  it('finds the plane points lie on: its axes by variance, and a map that keeps every distance', () => {
    const dim = 40;
    const n = 500;
    const [u, v] = plane(dim, 3);
    const rand = seededRandom(9);
    const centre = Float64Array.from({ length: dim }, () => rand());
    const ab: Array<[number, number]> = [];
    const rows = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      // an ellipse, 3 along u and 1 along v: a and b are uncorrelated, so u and v are the components
      const a = 3 * Math.cos((2 * Math.PI * i) / n);
      const b = Math.sin((2 * Math.PI * i) / n);
      ab.push([a, b]);
      for (let j = 0; j < dim; j++) rows[i * dim + j] = centre[j]! + a * u[j]! + b * v[j]!;
    }
    const pca = fitPca(rows, dim, 2);
    const dot = (x: Float64Array, y: Float64Array) => x.reduce((s, t, j) => s + t * y[j]!, 0);
    expect(Math.abs(dot(pca.components[0]!, u))).toBeGreaterThan(1 - 1e-6);
    expect(Math.abs(dot(pca.components[1]!, v))).toBeGreaterThan(1 - 1e-6);
    // the variances are those of a and b about their means
    const variance = (xs: number[]) => {
      const m = xs.reduce((s, x) => s + x, 0) / xs.length;
      return xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length;
    };
    expect(pca.variances[0]).toBeCloseTo(variance(ab.map((p) => p[0])), 4);
    expect(pca.variances[1]).toBeCloseTo(variance(ab.map((p) => p[1])), 4);
    const xy = projectPca(pca, rows);
    for (const [i, j] of [
      [0, 1],
      [5, 400],
      [17, 250],
    ] as const) {
      const want = Math.hypot(ab[i]![0] - ab[j]![0], ab[i]![1] - ab[j]![1]);
      const got = Math.hypot(xy[i * 2]! - xy[j * 2]!, xy[i * 2 + 1]! - xy[j * 2 + 1]!);
      expect(Math.abs(got - want)).toBeLessThan(1e-4);
    }
  });

  it('solves a symmetric eigenproblem exactly', () => {
    // [[2,1,0],[1,2,0],[0,0,5]]: eigenvalues 5, 3, 1
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 0, 1, 2, 0, 0, 0, 5]), 3);
    expect(values.map((x) => Number(x.toFixed(12)))).toEqual([5, 3, 1]);
    expect(Math.abs(vectors[0]![2]!)).toBeCloseTo(1, 12);
    expect(Math.abs(vectors[1]![0]!)).toBeCloseTo(Math.SQRT1_2, 12);
  });
});
