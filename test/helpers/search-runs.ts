import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Field, FixedSizeList, Float32, RecordBatch, Schema, Struct, Table, tableToIPC, Utf8, makeData } from 'apache-arrow';
import { float32ListData, utf8Data } from '../../src/sinks/arrow-data.js';
import { encodeParquet } from '../../src/sinks/parquet-file-writer.js';

/** What {@link writeRun} writes: a committed run folder of one vector column, as a run would leave it. */
export interface SyntheticRun {
  /** where the dataset folders go (a sink's root) */
  root: string;
  name?: string;
  fingerprint?: string;
  runId?: string;
  ids: string[];
  /** ids.length × dim */
  vectors: Float32Array;
  dim: number;
  /** the tap column. @defaultValue 'emb' */
  tap?: string;
  /** string columns carried beside id, by name */
  carried?: Record<string, string[]>;
  /** rows per part file. @defaultValue 1000 */
  shardSize?: number;
  format?: 'arrow' | 'parquet';
  /** write _SUCCESS. @defaultValue true */
  commit?: boolean;
}

/** Writes the part files, `_manifest.json` and `_SUCCESS` of a run; returns the run folder. */
export async function writeRun(r: SyntheticRun): Promise<string> {
  const name = r.name ?? 'vectors';
  const fp = r.fingerprint ?? '00000000feedbeef';
  const runId = r.runId ?? '20261207T000000-aaaaaa';
  const tap = r.tap ?? 'emb';
  const dir = join(r.root, name, fp, runId);
  await mkdir(dir, { recursive: true });
  const shardSize = r.shardSize ?? 1000;
  const n = r.ids.length;
  const listType = new FixedSizeList(r.dim, new Field('item', new Float32(), false));
  const carried = Object.entries(r.carried ?? {});
  const fields = [
    new Field('id', new Utf8(), false),
    ...carried.map(([c]) => new Field(c, new Utf8(), true)),
    new Field(tap, listType, false, new Map([['layertap.shape', JSON.stringify([r.dim])]])),
  ];
  const schema = new Schema(fields, new Map([['layertap.fingerprint', fp]]));
  const shards = [];
  const ext = r.format === 'parquet' ? 'parquet' : 'arrow';
  for (let s = 0, index = 0; s < n; s += shardSize, index++) {
    const e = Math.min(n, s + shardSize);
    const rows = e - s;
    const children = [
      utf8Data(r.ids.slice(s, e)),
      ...carried.map(([, v]) => utf8Data(v.slice(s, e))),
      float32ListData(listType, rows, r.vectors.slice(s * r.dim, e * r.dim)),
    ];
    const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children }));
    const table = new Table(schema, [batch]);
    const file = join(dir, `part-${String(index).padStart(5, '0')}.${ext}`);
    await writeFile(file, ext === 'parquet' ? await encodeParquet(tableToIPC(table, 'stream'), schema) : tableToIPC(table, 'file'));
    shards.push({ index, rows, errorRows: 0, file, errorsFile: null, bytes: 0, seconds: 0 });
  }
  const manifest = {
    runId,
    name,
    fingerprint: fp,
    status: 'committed',
    model: { uri: '/nowhere/model.onnx', format: 'onnx', backend: 'auto', runtime: 'onnx' },
    source: { uri: '/nowhere/rows', type: 'table' },
    preprocess: null,
    taps: [{ layer: 'pool', at: 'output', as: tap, reduce: 'none', normalize: 'none', dtype: 'float32', shape: [r.dim], layout: 'pooled' }],
    rows: n,
    errorRows: 0,
    files: shards.map((s) => s.file),
    errorFiles: [],
    shards,
    failedShards: [],
    createdAt: '2026-12-07T00:00:00.000Z',
    finishedAt: '2026-12-07T00:00:01.000Z',
    seconds: 1,
  };
  await writeFile(join(dir, '_manifest.json'), JSON.stringify(manifest, null, 2));
  if (r.commit !== false) await writeFile(join(dir, '_SUCCESS'), '');
  return dir;
}

export { prng as seeded } from '../../src/types/prng.js';
