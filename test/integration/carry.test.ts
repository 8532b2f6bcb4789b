import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Bool,
  Field,
  Float64,
  Int32,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Table,
  Utf8,
  makeData,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob, type JobInput } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { loadParquetWasm } from '../../src/storage/index.js';
import { REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';
import { TEXT_DIR } from '../helpers/models.js';

interface Doc {
  id: string;
  text: string;
  url: string | null;
  year: number;
  score: number | null;
  ok: boolean;
}

const DOCS: Doc[] = [
  { id: 'a', text: 'The cat sat on the mat.', url: 'https://a.example/1', year: 2021, score: 0.5, ok: true },
  { id: 'b', text: 'A dog ran to the park in the morning.', url: null, year: 1999, score: null, ok: false },
  { id: 'c', text: 'Hooks keep the output of a middle layer for every token.', url: 'https://c.example/ü', year: 2024, score: -2.25, ok: true },
  { id: 'd', text: '', url: 'https://d.example', year: 0, score: 1e-3, ok: false },
  { id: 'e', text: 'Trains take people to work in the city.', url: 'https://e.example', year: 7, score: 3, ok: true },
];

/** The docs as a Parquet or Arrow IPC file: id, text, url (nullable), year (int32), score (float64, nullable), ok (bool). */
async function writeTable(file: string, docs: Doc[], format: 'parquet' | 'arrow'): Promise<void> {
  const fields = [
    new Field('id', new Utf8(), false),
    new Field('text', new Utf8(), false),
    new Field('url', new Utf8(), true),
    new Field('year', new Int32(), false),
    new Field('score', new Float64(), true),
    new Field('ok', new Bool(), false),
  ];
  const col = <K extends keyof Doc>(k: K, type: Utf8 | Int32 | Float64 | Bool) => vectorFromArray(docs.map((d) => d[k]) as never[], type).data[0]!;
  const children = [
    col('id', new Utf8()),
    col('text', new Utf8()),
    col('url', new Utf8()),
    col('year', new Int32()),
    col('score', new Float64()),
    col('ok', new Bool()),
  ];
  const batch = new RecordBatch(new Schema(fields), makeData({ type: new Struct(fields), length: docs.length, nullCount: 0, children }));
  if (format === 'arrow') return writeFile(file, tableToIPC(new Table([batch]), 'file'));
  const pq = await loadParquetWasm();
  await writeFile(file, pq.writeParquet(pq.Table.fromIPCStream(RecordBatchStreamWriter.writeAll([batch]).toUint8Array(true))));
}

function column(tables: Table[], name: string): unknown[] {
  return tables.flatMap((t) => [...t.getChild(name)!]).map((v) => (typeof v === 'bigint' ? Number(v) : v));
}

describe('source.carry: source columns copied beside id', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();

  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  const run = async (name: string, source: JobInput['source'], extra: Partial<JobInput> = {}) => {
    const job = parseJob({
      name,
      source,
      model: { uri: join(TEXT_DIR, 'model.onnx') },
      taps: [{ layer: 'encoder.layer.3', reduce: 'mean', as: 'mean' }],
      batchSize: 2,
      shardSize: 3,
      sink: { uri: join(tmp.dir, `out-${name}`), format: 'parquet' },
      ...extra,
    });
    const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    expect(summary.status).toBe('committed');
    const manifest = JSON.parse(await readFile(summary.output.manifest!, 'utf8')) as {
      schema?: Array<{ name: string; type: string; nullable: boolean }>;
    } & Record<string, unknown>;
    return { tables: await Promise.all(summary.output.files.map((f) => readPartFile(f))), manifest };
  };

  it.each(['parquet', 'arrow'] as const)(
    'writes text, integer, float and boolean columns of a table (%s) as utf8, int64, float64 and bool, nulls kept',
    async (format) => {
      const file = join(tmp.dir, `docs.${format}`);
      await writeTable(file, DOCS, format);
      const { tables } = await run(format, { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['url', 'year', 'score', 'ok', 'text'] });
      const fields = tables[0]!.schema.fields;
      expect(fields.map((f) => `${f.name}:${String(f.type)}:${f.nullable}`)).toEqual([
        'id:Utf8:false',
        'url:Utf8:true',
        'year:Int64:true',
        'score:Float64:true',
        'ok:Bool:true',
        'text:Utf8:true',
        'mean:FixedSizeList[32]<Float32>:false',
      ]);
      expect(fields.slice(1, 6).map((f) => f.metadata.get('layertap.column'))).toEqual(['carry', 'carry', 'carry', 'carry', 'carry']);
      expect(column(tables, 'id')).toEqual(DOCS.map((d) => d.id));
      for (const k of ['url', 'year', 'score', 'ok', 'text'] as const) expect(column(tables, k), k).toEqual(DOCS.map((d) => d[k]));
    },
  );

  it('carries JSONL fields (numbers as float64), and nothing with carry: []', async () => {
    const file = join(tmp.dir, 'docs.jsonl');
    await writeFile(file, DOCS.map((d) => JSON.stringify(d)).join('\n') + '\n');
    const { tables } = await run('jsonl', { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['year', 'url', 'ok'] });
    expect(tables[0]!.schema.fields.map((f) => `${f.name}:${String(f.type)}`).slice(0, 4)).toEqual(['id:Utf8', 'year:Float64', 'url:Utf8', 'ok:Bool']);
    expect(column(tables, 'year')).toEqual(DOCS.map((d) => d.year));
    expect(column(tables, 'url')).toEqual(DOCS.map((d) => d.url));
    const none = await run('jsonl-none', { uri: file, idColumn: 'id', inputColumn: 'text', carry: [] });
    expect(none.tables[0]!.schema.fields.map((f) => f.name)).toEqual(['id', 'mean']);
  });

  it('takes carried values from the source of the run that writes them, also for rows an incremental run carries over', async () => {
    const file = join(tmp.dir, 'inc.jsonl');
    await writeFile(file, DOCS.map((d) => JSON.stringify(d)).join('\n') + '\n');
    const source = { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['url', 'text'] };
    const first = await run('inc', source, { incremental: true });
    // the url of every row changes, the text of one: that row alone is embedded again
    const changed = DOCS.map((d) => ({ ...d, url: `${d.url ?? 'none'}?v=2`, text: d.id === 'c' ? `${d.text} Again.` : d.text }));
    await writeFile(file, changed.map((d) => JSON.stringify(d)).join('\n') + '\n');
    const second = await run('inc', source, { incremental: true });
    expect(second.manifest['incremental']).toMatchObject({ carriedRows: 4, embeddedRows: 1 });
    expect(column(second.tables, 'url')).toEqual(changed.map((d) => d.url));
    expect(column(second.tables, 'text')).toEqual(changed.map((d) => d.text));
    const before = column(first.tables, 'mean') as Array<Iterable<number>>;
    const after = column(second.tables, 'mean') as Array<Iterable<number>>;
    // carried rows' vectors are copied bit for bit
    for (const r of [0, 1, 3, 4]) expect([...after[r]!]).toEqual([...before[r]!]);
    expect([...after[2]!]).not.toEqual([...before[2]!]);
  });
});
