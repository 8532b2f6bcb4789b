import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/index.js';
import { seeded, writeRun } from '../helpers/search-runs.js';

const DIM = 8;

// `layertap map` on a run whose rows lie on a plane through the origin: at unit length they stay on
// it, so the PCA map is an isometry of the unit rows, and the neighbours are the exact ones.
describe('layertap map', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let runDir = '';
  const n = 600;
  const unit: number[][] = [];
  const ids = Array.from({ length: n }, (_, i) => `p${i}`);
  const group = ids.map((_, i) => `g${i % 3}`);

  beforeAll(async () => {
    tmp = await tempDir();
    const rand = seeded(5);
    const u = [1, 2, 0, 0, -1, 0, 0, 0].map((x) => x / Math.sqrt(6));
    const v = [0, 0, 1, 0, 0, 0, 1, 0].map((x) => x / Math.SQRT2);
    const vectors = new Float32Array(n * DIM);
    for (let i = 0; i < n; i++) {
      // three arcs of the circle, one per group, at random lengths
      const angle = (i % 3) * 2.1 + rand() * 0.8;
      const r = 0.5 + rand() * 3;
      const row = u.map((x, j) => r * (Math.cos(angle) * x + Math.sin(angle) * v[j]!));
      vectors.set(row, i * DIM);
      const norm = Math.hypot(...row);
      unit.push(row.map((x) => x / norm));
    }
    runDir = await writeRun({ root: tmp.dir, ids, vectors, dim: DIM, carried: { group }, shardSize: 250 });
  });
  afterAll(async () => tmp.remove());

  it('writes id, x, y, neighbors (embedding-atlas form) and the carried columns; PCA keeps the distances of the unit rows', async () => {
    const out = join(tmp.dir, 'map.parquet');
    const r = await runCli(['map', runDir, '--out', out, '--neighbors', '4', '--json'], {}, 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ out, tap: 'emb', method: 'pca', points: n, rows: n, neighbors: 4 });
    const t = await readPartFile(out);
    expect(t.schema.fields.map((f) => `${f.name}: ${String(f.type)}`)).toEqual([
      'id: Utf8',
      'x: Float32',
      'y: Float32',
      'neighbors: Struct<{ids:List<Int32>, distances:List<Float32>}>',
      'group: Utf8',
    ]);
    expect(t.numRows).toBe(n);
    const gotIds = [...t.getChild('id')!].map(String);
    expect(gotIds).toEqual(ids);
    expect([...t.getChild('group')!].map(String)).toEqual(group);
    const x = t.getChild('x')!.toArray() as Float32Array;
    const y = t.getChild('y')!.toArray() as Float32Array;
    for (const [i, j] of [
      [0, 1],
      [2, 300],
      [17, 599],
    ] as const) {
      const want = Math.hypot(...unit[i]!.map((a, d) => a - unit[j]![d]!));
      expect(Math.abs(Math.hypot(x[i]! - x[j]!, y[i]! - y[j]!) - want)).toBeLessThan(1e-4);
    }
    // a run this small has exact neighbours: row positions and cosine distances
    const nb = t.getChild('neighbors')!;
    for (const i of [0, 123, 599]) {
      const cell = nb.get(i) as { ids: { toArray(): Int32Array }; distances: { toArray(): Float32Array } } | null;
      const dist = unit.map((row, j) => ({ j, d: 1 - row.reduce((s, a, t2) => s + a * unit[i]![t2]!, 0) })).filter((e) => e.j !== i);
      dist.sort((a, b) => a.d - b.d || a.j - b.j);
      const got = Array.from(cell!.distances.toArray());
      got.forEach((d, s) => expect(Math.abs(d - dist[s]!.d)).toBeLessThan(1e-5));
      // points at the same distance may come in either order: compare the distances of the ids given
      Array.from(cell!.ids.toArray()).forEach((j, s) =>
        expect(Math.abs(1 - unit[j]!.reduce((a, b, t2) => a + b * unit[i]![t2]!, 0) - got[s]!)).toBeLessThan(1e-5),
      );
    }
  });

  it('samples a large run uniformly to --points, and places points by UMAP so that the groups stay apart', async () => {
    const out = join(tmp.dir, 'umap.parquet');
    const r = await runCli(['map', runDir, '--method', 'umap', '--points', '300', '--out', out], {}, 120_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `wrote 300 points (of ${n} rows) of 'emb' by umap to ${out} in ${/in ([\d.]+) s/.exec(r.stdout)![1]} s\nopen it with: embedding-atlas ${out} --x x --y y --neighbors neighbors\n`,
    );
    const t = await readPartFile(out);
    const got = [...t.getChild('id')!].map(String);
    expect(new Set(got).size).toBe(300);
    expect(got.every((id) => ids.includes(id))).toBe(true);
    // each shard of 250 rows gives its share of the sample
    expect(got.filter((id) => Number(id.slice(1)) < 250).length).toBe(125);
    const x = t.getChild('x')!.toArray() as Float32Array;
    const y = t.getChild('y')!.toArray() as Float32Array;
    const g = [...t.getChild('group')!].map(String);
    let same = 0;
    for (let i = 0; i < got.length; i++) {
      let best = -1;
      let bestD = Infinity;
      for (let j = 0; j < got.length; j++) {
        const d = j === i ? Infinity : (x[i]! - x[j]!) ** 2 + (y[i]! - y[j]!) ** 2;
        if (d < bestD) [best, bestD] = [j, d];
      }
      if (g[best] === g[i]) same++;
    }
    expect(same / got.length).toBeGreaterThan(0.95);
  });

  it('names the methods when given another', async () => {
    const r = await runCli(['map', runDir, '--method', 'tsne'], {}, 60_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: option '--method <method>' argument 'tsne' is invalid. Allowed choices are pca, umap.");
  });
});
