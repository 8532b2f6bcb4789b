import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { DuckDBConnection } from '@duckdb/node-api';
import { Field, FixedSizeList, Float32, RecordBatch, RecordBatchStreamWriter, Schema, Struct, Utf8, makeData, tableFromIPC } from 'apache-arrow';
import type { Table } from 'apache-arrow';
import pl from 'nodejs-polars';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { loadParquetWasm } from '../../src/storage/index.js';
import type { RunSummary } from '../../src/queue/index.js';
import { featureRows, maxAbsDiff, readArrow, REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { cosine } from '../helpers/models.js';

const DIM = 64; // the seed model's classifier input

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A Parquet table of 28x28 inputs (flat lists of 784 floats) in row groups of 4, with an id and a label column. */
async function writeInputs(file: string, rows: Array<{ id: string; pixels: Float32Array }>): Promise<void> {
  const listType = new FixedSizeList(784, new Field('item', new Float32(), false));
  const fields = [new Field('id', new Utf8(), false), new Field('label', new Utf8(), false), new Field('pixels', listType, false)];
  const schema = new Schema(fields);
  const enc = new TextEncoder();
  const utf8 = (values: string[]) => {
    const offsets = new Int32Array(values.length + 1);
    const bytes = values.map((v) => enc.encode(v));
    bytes.forEach((b, i) => (offsets[i + 1] = offsets[i]! + b.length));
    const data = new Uint8Array(offsets[values.length]!);
    bytes.forEach((b, i) => data.set(b, offsets[i]!));
    return makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets: offsets, data });
  };
  const values = new Float32Array(rows.length * 784);
  rows.forEach((r, i) => values.set(r.pixels, i * 784));
  const pixels = makeData({
    type: listType,
    length: rows.length,
    nullCount: 0,
    child: makeData({ type: new Float32(), length: values.length, nullCount: 0, data: values }),
  });
  const batch = new RecordBatch(
    schema,
    makeData({
      type: new Struct(fields),
      length: rows.length,
      nullCount: 0,
      children: [utf8(rows.map((r) => r.id)), utf8(rows.map((r) => `label of ${r.id}`)), pixels],
    }),
  );
  const pq = await loadParquetWasm();
  const props = new pq.WriterPropertiesBuilder().setMaxRowGroupSize(4).build();
  await writeFile(file, pq.writeParquet(pq.Table.fromIPCStream(RecordBatchStreamWriter.writeAll([batch]).toUint8Array(true)), props));
}

/** Features of every part of a run, read with apache-arrow (Parquet parts through parquet-wasm). */
async function readRun(files: string[]): Promise<{ ids: string[]; rows: Float32Array[]; tables: Table[] }> {
  const pq = await loadParquetWasm();
  const ids: string[] = [];
  const rows: Float32Array[] = [];
  const tables: Table[] = [];
  for (const f of files) {
    const t = f.endsWith('.parquet') ? tableFromIPC(pq.readParquet(await readFile(f)).intoIPCStream()) : await readArrow(f);
    tables.push(t);
    for (let i = 0; i < t.numRows; i++) ids.push(String(t.getChild('id')!.get(i)));
    rows.push(...featureRows(t, 'hidden'));
  }
  return { ids, rows, tables };
}

// What people downstream do with the output: DuckDB over the Parquet parts (count, nearest
// neighbour by cosine), Polars over the Arrow IPC parts; the numbers must be layertap's.
describe('downstream tools read the output', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const ids: string[] = [];
  let parquetRun: RunSummary;
  let arrowRun: RunSummary;
  let db: DuckDBInstance;
  let con: DuckDBConnection;

  beforeAll(async () => {
    tmp = await tempDir();
    const next = rng(42);
    const rows: Array<{ id: string; pixels: Float32Array }> = [];
    for (let i = 0; i < 10; i++) {
      // a bright random patch at a random place on black: items differ in where and what
      const pixels = new Float32Array(784);
      const [x0, y0] = [Math.floor(next() * 18), Math.floor(next() * 18)];
      for (let y = y0; y < y0 + 10; y++) for (let x = x0; x < x0 + 10; x++) pixels[y * 28 + x] = next();
      rows.push({ id: `item-${String(i).padStart(2, '0')}`, pixels });
      // item-03 has a near copy: its nearest neighbour
      if (i === 3) rows.push({ id: 'item-03b', pixels: pixels.map((v) => (v > 0 ? Math.min(1, v + (next() - 0.5) * 0.02) : 0)) });
    }
    ids.push(...rows.map((r) => r.id));
    await writeInputs(join(tmp.dir, 'inputs.parquet'), rows);
    const job = (format: 'arrow' | 'parquet') =>
      parseJob({
        name: 'downstream',
        source: { uri: join(tmp.dir, 'inputs.parquet'), inputColumn: 'pixels' },
        model: { uri: SEED_MODEL },
        taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
        batchSize: 4,
        shardSize: 5,
        sink: { uri: join(tmp.dir, `out-${format}`), format },
      });
    const settings = { redisUrl: REDIS_URL, prefix };
    parquetRun = await runJob(job('parquet'), { settings, threads: 1 });
    arrowRun = await runJob(job('arrow'), { settings, threads: 1 });
    db = await DuckDBInstance.create(':memory:');
    con = await db.connect();
  });
  afterAll(async () => {
    con?.closeSync();
    db?.closeSync();
    await cleanup();
    await tmp.remove();
  });

  it('writes Parquet parts with the Arrow schema: FixedSizeList columns and the metadata', async () => {
    expect(parquetRun.status).toBe('committed');
    expect(parquetRun.rows).toBe(11);
    expect(parquetRun.output.files.map((f) => f.split('/').pop())).toEqual(['part-00000.parquet', 'part-00001.parquet', 'part-00002.parquet']);
    expect((await readdir(parquetRun.output.uri)).filter((f) => f !== '_index').sort()).toEqual([
      '_SUCCESS',
      '_manifest.json',
      'part-00000.parquet',
      'part-00001.parquet',
      'part-00002.parquet',
    ]);
    const { ids: got, tables } = await readRun(parquetRun.output.files);
    expect(got).toEqual(ids);
    for (const t of tables) {
      expect(String(t.schema.fields[1]!.type)).toBe(`FixedSizeList[${DIM}]<Float32>`);
      expect(Object.fromEntries(t.schema.fields[1]!.metadata)).toMatchObject({
        'layertap.layer': 'linear_class.0',
        'layertap.at': 'input',
        'layertap.shape': `[${DIM}]`,
      });
      expect(t.schema.metadata.get('layertap.fingerprint')).toBe(parquetRun.fingerprint);
      expect(t.schema.metadata.get('layertap.runId')).toBe(parquetRun.runId);
    }
  });

  it('DuckDB counts the rows and finds the nearest neighbour by cosine', async () => {
    const parts = `${parquetRun.output.uri}/part-*.parquet`;
    const count = await con.runAndReadAll(`SELECT count(*)::INTEGER AS n, count(DISTINCT id)::INTEGER AS ids FROM read_parquet('${parts}')`);
    expect(count.getRowObjectsJS()).toEqual([{ n: 11, ids: 11 }]);

    const query = `
      WITH q AS (SELECT hidden::FLOAT[${DIM}] AS v FROM read_parquet('${parts}') WHERE id = 'item-03')
      SELECT p.id, array_cosine_similarity(p.hidden::FLOAT[${DIM}], q.v) AS similarity
      FROM read_parquet('${parts}') AS p, q
      WHERE p.id <> 'item-03'
      ORDER BY similarity DESC
      LIMIT 3`;
    const nn = (await con.runAndReadAll(query)).getRowObjectsJS() as Array<{ id: string; similarity: number }>;
    expect(nn[0]!.id).toBe('item-03b');

    // the same ranking computed here from the features as apache-arrow reads them
    const { ids: got, rows } = await readRun(parquetRun.output.files);
    const q = rows[got.indexOf('item-03')]!;
    const ranked = got
      .map((id, i) => ({ id, similarity: cosine(rows[i]!, q) }))
      .filter((r) => r.id !== 'item-03')
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, 3);
    expect(nn.map((r) => r.id)).toEqual(ranked.map((r) => r.id));
    nn.forEach((r, i) => expect(r.similarity).toBeCloseTo(ranked[i]!.similarity, 5));
    console.log(`duckdb: ${query.replace(/\s+/g, ' ').trim()}\n  -> ${nn.map((r) => `${r.id} ${r.similarity.toPrecision(9)}`).join(', ')}`);

    // DuckDB's values are layertap's, bit for bit
    const all = (await con.runAndReadAll(`SELECT id, hidden FROM read_parquet('${parts}') ORDER BY id`)).getRowObjectsJS() as Array<{
      id: string;
      hidden: number[];
    }>;
    expect(all.map((r) => r.id)).toEqual([...got].sort());
    for (const r of all) expect(maxAbsDiff(Float32Array.from(r.hidden), rows[got.indexOf(r.id)]!)).toBe(0);

    const kv = (
      await con.runAndReadAll(
        `SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${parquetRun.output.files[0]}') WHERE decode(key) LIKE 'layertap.%'`,
      )
    ).getRowObjectsJS();
    expect(kv).toContainEqual({ k: 'layertap.fingerprint', v: parquetRun.fingerprint });
  });

  it('Polars reads the Arrow IPC parts with the same values', async () => {
    expect(arrowRun.status).toBe('committed');
    const fromArrow = await readRun(arrowRun.output.files);
    const fromParquet = await readRun(parquetRun.output.files);
    expect(fromArrow.ids).toEqual(ids);
    const polarsIds: string[] = [];
    const polarsRows: Float32Array[] = [];
    for (const f of arrowRun.output.files) {
      const df = pl.readIPC(await readFile(f));
      expect(df.getColumn('hidden').dtype.toString()).toContain('FixedSizeList');
      polarsIds.push(...(df.getColumn('id').toArray() as string[]));
      for (const v of df.getColumn('hidden').toArray() as unknown as number[][]) polarsRows.push(Float32Array.from(v));
    }
    expect(polarsIds).toEqual(ids);
    polarsRows.forEach((r, i) => {
      expect(maxAbsDiff(r, fromArrow.rows[i]!)).toBe(0);
      // and both formats hold the same features
      expect(maxAbsDiff(fromParquet.rows[i]!, fromArrow.rows[i]!)).toBe(0);
    });
  });
});
