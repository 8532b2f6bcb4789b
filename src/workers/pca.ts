/**
 * Principal components of a set of rows (row-major, n × d), by randomized subspace iteration
 * (Halko, Martinsson and Tropp 2011): a few passes over the rows with p = components + 8 vectors,
 * then the exact eigenvectors of the small p × p problem. Never forms the d × d covariance, so
 * wide rows (thousands of values) cost n·d·p per pass.
 */

/** A fitted PCA: `mean` (d) and `components` (m × d, orthonormal rows, largest variance first). */
export interface Pca {
  dim: number;
  mean: Float64Array;
  components: Float64Array[];
  /** variance along each component */
  variances: number[];
}

import { prng as seededRandom } from '../types/prng.js';

export { seededRandom };

/** Orthonormalise the columns (vectors) in place by modified Gram-Schmidt; a dependent one becomes zero. */
function orthonormalize(vs: Float64Array[]): void {
  for (let i = 0; i < vs.length; i++) {
    const v = vs[i]!;
    for (let j = 0; j < i; j++) {
      const u = vs[j]!;
      let dot = 0;
      for (let t = 0; t < v.length; t++) dot += v[t]! * u[t]!;
      for (let t = 0; t < v.length; t++) v[t]! -= dot * u[t]!;
    }
    let norm = 0;
    for (let t = 0; t < v.length; t++) norm += v[t]! * v[t]!;
    norm = Math.sqrt(norm);
    for (let t = 0; t < v.length; t++) v[t] = norm > 1e-12 ? v[t]! / norm : 0;
  }
}

/** Eigen-decomposition of a small symmetric matrix (row-major p × p) by cyclic Jacobi rotations. */
export function symmetricEigen(a: Float64Array, p: number): { values: number[]; vectors: Float64Array[] } {
  const m = Float64Array.from(a);
  const v = new Float64Array(p * p);
  for (let i = 0; i < p; i++) v[i * p + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < p; i++) for (let j = i + 1; j < p; j++) off += m[i * p + j]! ** 2;
    if (off < 1e-22) break;
    for (let i = 0; i < p; i++) {
      for (let j = i + 1; j < p; j++) {
        const aij = m[i * p + j]!;
        if (Math.abs(aij) < 1e-300) continue;
        const theta = (m[j * p + j]! - m[i * p + i]!) / (2 * aij);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < p; k++) {
          const mki = m[k * p + i]!;
          const mkj = m[k * p + j]!;
          m[k * p + i] = c * mki - s * mkj;
          m[k * p + j] = s * mki + c * mkj;
        }
        for (let k = 0; k < p; k++) {
          const mik = m[i * p + k]!;
          const mjk = m[j * p + k]!;
          m[i * p + k] = c * mik - s * mjk;
          m[j * p + k] = s * mik + c * mjk;
        }
        for (let k = 0; k < p; k++) {
          const vki = v[k * p + i]!;
          const vkj = v[k * p + j]!;
          v[k * p + i] = c * vki - s * vkj;
          v[k * p + j] = s * vki + c * vkj;
        }
      }
    }
  }
  const order = Array.from({ length: p }, (_, i) => i).sort((x, y) => m[y * p + y]! - m[x * p + x]!);
  return {
    values: order.map((i) => m[i * p + i]!),
    vectors: order.map((i) => Float64Array.from({ length: p }, (_, k) => v[k * p + i]!)),
  };
}

/**
 * The first `components` principal components of `rows` (n × dim). Deterministic for a seed;
 * each component's sign is chosen so that its largest entry is positive.
 */
export function fitPca(rows: Float32Array, dim: number, components: number, opts: { seed?: number; iterations?: number } = {}): Pca {
  const n = rows.length / dim;
  if (!Number.isInteger(n) || n < 1) throw new Error(`fitPca: ${rows.length} values are not rows of ${dim}`);
  const m = Math.min(components, dim);
  const p = Math.min(dim, m + 8);
  const mean = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let j = 0; j < dim; j++) mean[j]! += rows[r * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= n;
  const rand = seededRandom(opts.seed ?? 42);
  let basis: Float64Array[] = Array.from({ length: p }, () => Float64Array.from({ length: dim }, () => rand() * 2 - 1));
  orthonormalize(basis);
  const row = new Float64Array(dim);
  /** Xᵀ X q for each q of `basis` (X centred), one pass over the rows */
  const apply = (qs: Float64Array[]): Float64Array[] => {
    const out = qs.map(() => new Float64Array(dim));
    const proj = new Float64Array(qs.length);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < dim; j++) row[j] = rows[r * dim + j]! - mean[j]!;
      for (let a = 0; a < qs.length; a++) {
        const q = qs[a]!;
        let s = 0;
        for (let j = 0; j < dim; j++) s += row[j]! * q[j]!;
        proj[a] = s;
      }
      for (let a = 0; a < qs.length; a++) {
        const o = out[a]!;
        const s = proj[a]!;
        if (s !== 0) for (let j = 0; j < dim; j++) o[j]! += s * row[j]!;
      }
    }
    return out;
  };
  for (let it = 0; it < (opts.iterations ?? 6); it++) {
    basis = apply(basis);
    orthonormalize(basis);
  }
  // Rayleigh-Ritz: the covariance restricted to the basis, p × p, solved exactly
  const cq = apply(basis);
  const small = new Float64Array(p * p);
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) small[a * p + b] = basis[a]!.reduce((s, x, j) => s + x * cq[b]![j]!, 0) / n;
  const { values, vectors } = symmetricEigen(small, p);
  const comps: Float64Array[] = [];
  for (let c = 0; c < m; c++) {
    const w = vectors[c]!;
    const v = new Float64Array(dim);
    for (let a = 0; a < p; a++) for (let j = 0; j < dim; j++) v[j]! += w[a]! * basis[a]![j]!;
    let big = 0;
    for (let j = 0; j < dim; j++) if (Math.abs(v[j]!) > Math.abs(big)) big = v[j]!;
    if (big < 0) for (let j = 0; j < dim; j++) v[j] = -v[j]!;
    comps.push(v);
  }
  return { dim, mean, components: comps, variances: values.slice(0, m).map((x) => Math.max(0, x)) };
}

/** `rows` (n × dim) in the fitted components' coordinates: n × components, float32. */
export function projectPca(pca: Pca, rows: Float32Array): Float32Array {
  const { dim, mean, components } = pca;
  const n = rows.length / dim;
  const m = components.length;
  const out = new Float32Array(n * m);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < m; c++) {
      const v = components[c]!;
      let s = 0;
      for (let j = 0; j < dim; j++) s += (rows[r * dim + j]! - mean[j]!) * v[j]!;
      out[r * m + c] = s;
    }
  }
  return out;
}
