import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/index.js';
import { seeded, writeRun } from '../helpers/search-runs.js';

const N = 2500;
const DIM = 16;

/** The k nearest rows to row q by cosine, brute force in float64: the reference. */
function reference(vectors: Float32Array, q: number, k: number): Array<{ row: number; score: number }> {
  const norm = (i: number) => Math.sqrt(Array.from(vectors.subarray(i * DIM, (i + 1) * DIM)).reduce((a, x) => a + x * x, 0));
  const nq = norm(q);
  const all: Array<{ row: number; score: number }> = [];
  for (let i = 0; i < N; i++) {
    if (i === q) continue;
    let dot = 0;
    for (let j = 0; j < DIM; j++) dot += vectors[q * DIM + j]! * vectors[i * DIM + j]!;
    all.push({ row: i, score: dot / (nq * norm(i)) });
  }
  return all.sort((a, b) => b.score - a.score).slice(0, k);
}

describe('layertap neighbours', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let runDir = '';
  let parquetDir = '';
  const rand = seeded(21);
  const vectors = Float32Array.from({ length: N * DIM }, () => rand() * 2 - 1);
  const ids = Array.from({ length: N }, (_, i) => `row-${i}`);
  const text = ids.map((id) => `text of ${id}`);

  beforeAll(async () => {
    tmp = await tempDir();
    runDir = await writeRun({ root: join(tmp.dir, 'out'), ids, vectors, dim: DIM, carried: { text }, shardSize: 700 });
    parquetDir = await writeRun({ root: join(tmp.dir, 'pq'), ids, vectors, dim: DIM, shardSize: 1000, format: 'parquet' });
  });
  afterAll(async () => tmp.remove());

  it('lists the exact k nearest rows by cosine, the row itself excluded, with carried columns (--json)', async () => {
    const r = await runCli(['neighbours', runDir, 'row-7', '-k', '5', '--json'], {}, 60_000);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { id: string; tap: string; text: string; neighbours: Array<{ id: string; score: number; text: string }> };
    const want = reference(vectors, 7, 5);
    expect(got.id).toBe('row-7');
    expect(got.tap).toBe('emb');
    expect(got.text).toBe('text of row-7');
    expect(got.neighbours.map((n) => n.id)).toEqual(want.map((w) => `row-${w.row}`));
    got.neighbours.forEach((n, i) => {
      expect(Math.abs(n.score - want[i]!.score)).toBeLessThan(1e-5);
      expect(n.text).toBe(`text of ${n.id}`);
    });
    expect(Object.keys(got.neighbours[0]!).sort()).toEqual(['id', 'score', 'text']);
  });

  it('reads Parquet parts and prints a table without --json; one thread gives the same rows', async () => {
    const r = await runCli(['neighbours', parquetDir, 'row-2499', '-k', '3', '--threads', '1'], {}, 60_000);
    expect(r.code, r.stderr).toBe(0);
    const want = reference(vectors, 2499, 3);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`3 nearest to row-2499 in 'emb' (run 20261207T000000-aaaaaa, ${N} rows):`);
    expect(lines[1]!.split(/\s+/)).toEqual(['#', 'score', 'id']);
    expect(lines.slice(2).map((l) => l.split(/\s+/)[2])).toEqual(want.map((w) => `row-${w.row}`));
    expect(lines.slice(2).map((l) => Number(l.split(/\s+/)[1]))).toEqual(want.map((w) => Number(w.score.toFixed(5))));
  });

  it('takes a job file for its newest committed run', async () => {
    const root = join(tmp.dir, 'jobs-out');
    // an older committed run, a newer one, and a still newer one that never committed
    await writeRun({ root, runId: '20261201T000000-old000', ids, vectors, dim: DIM, carried: { text: ids.map(() => 'old') } });
    await writeRun({ root, runId: '20261202T000000-new000', ids, vectors, dim: DIM, carried: { text: ids.map(() => 'new') } });
    await writeRun({ root, runId: '20261203T000000-open00', ids, vectors, dim: DIM, carried: { text: ids.map(() => 'open') }, commit: false });
    const job = join(tmp.dir, 'job.yaml');
    await writeFile(job, `name: vectors\nsource: { uri: ./rows.parquet }\nmodel: { uri: ./model.onnx }\nsink: { uri: ./jobs-out }\n`);
    const r = await runCli(['neighbours', job, 'row-1', '-k', '2', '--json'], {}, 60_000);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { text: string; neighbours: Array<{ id: string; text: string }> };
    expect(got.text).toBe('new');
    expect(got.neighbours.map((n) => n.id)).toEqual(reference(vectors, 1, 2).map((w) => `row-${w.row}`));
  });

  it('says in one line, exit 2, what is wrong with the run, the id or the tap', async () => {
    const cases: Array<[string[], string]> = [
      [[runDir, 'nope'], "layertap: unknown id 'nope': no row of run 20261207T000000-aaaaaa has it\n"],
      [[runDir, 'row-1', '--tap', 'hidden'], "layertap: unknown tap 'hidden'; taps are: emb\n"],
      [
        [join(tmp.dir, 'missing'), 'row-1'],
        `layertap: no run folder at ${join(tmp.dir, 'missing')} (give a run's output uri as 'layertap run' prints it, or its job file)\n`,
      ],
      [
        [join(tmp.dir, 'jobs-out', 'vectors', '00000000feedbeef', '20261203T000000-open00'), 'row-1'],
        `layertap: ${join(tmp.dir, 'jobs-out', 'vectors', '00000000feedbeef', '20261203T000000-open00')} is not committed (it has no _SUCCESS)\n`,
      ],
    ];
    for (const [args, stderr] of cases) {
      const r = await runCli(['neighbours', ...args], {}, 60_000);
      expect({ code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({ code: 2, stderr, stdout: '' });
    }
    const partial = await writeRun({ root: join(tmp.dir, 'partial'), ids, vectors, dim: DIM, commit: false });
    await writeFile(join(partial, '_PARTIAL'), '');
    const p = await runCli(['neighbours', partial, 'row-1'], {}, 60_000);
    expect({ code: p.code, stderr: p.stderr }).toEqual({
      code: 2,
      stderr: `layertap: ${partial} is a partial run (_PARTIAL: some shards failed), not a committed one\n`,
    });
    // a LanceDB run keeps its rows in the table: said, not an empty answer
    const lance = join(tmp.dir, 'lance-run');
    await mkdir(lance, { recursive: true });
    await writeFile(join(lance, '_SUCCESS'), '');
    const manifest = {
      runId: '20261207T000000-lance0',
      rows: 3,
      shards: [{ index: 0, file: null, rows: 3 }],
      taps: [{ as: 'emb' }],
      table: { uri: '/data/db', table: 'docs' },
    };
    await writeFile(join(lance, '_manifest.json'), JSON.stringify(manifest));
    const l = await runCli(['neighbours', lance, 'row-1'], {}, 60_000);
    expect({ code: l.code, stderr: l.stderr }).toEqual({
      code: 2,
      stderr:
        "layertap: run 20261207T000000-lance0 wrote its 3 rows into the table 'docs' at /data/db, not into part files: search it with the table's own search (README, \"Into LanceDB\")\n",
    });
    const none = join(tmp.dir, 'none.yaml');
    await writeFile(none, `name: nothing\nsource: { uri: ./rows.parquet }\nmodel: { uri: ./model.onnx }\nsink: { uri: ./jobs-out }\n`);
    const r = await runCli(['neighbours', none, 'row-1', '--json'], {}, 60_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`layertap: no committed run of 'nothing' under ${join(tmp.dir, 'jobs-out', 'nothing')} (run 'layertap run ${none}' first)\n`);
    expect(JSON.parse(r.stdout)).toEqual({ error: r.stderr.slice('layertap: '.length, -1) });
  });
});
