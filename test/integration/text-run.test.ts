import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Field, RecordBatch, RecordBatchStreamWriter, Schema, Struct, Utf8, makeData, type Table } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob, type JobInput } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { utf8Data } from '../../src/sinks/arrow-data.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { readNpy } from '../../src/sources/npy.js';
import { loadParquetWasm } from '../../src/storage/index.js';
import { maxAbsDiff, REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';

const TEXT = fileURLToPath(new URL('../fixtures/text-model/', import.meta.url));
const EXPECTED = join(TEXT, 'expected');
const MODULES = ['embeddings', 'encoder.layer.0', 'encoder.layer.1', 'encoder.layer.2', 'encoder.layer.3'];
const POOLINGS = ['mean', 'max', 'cls', 'last'] as const;
const HIDDEN = 32;

interface Sentence {
  id: string;
  text: string;
}

/** The sentences as a Parquet table (id, text) in row groups of 4. */
async function writeParquet(file: string, rows: Sentence[]): Promise<void> {
  const fields = [new Field('id', new Utf8(), false), new Field('text', new Utf8(), false)];
  const batch = new RecordBatch(
    new Schema(fields),
    makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children: [utf8Data(rows.map((r) => r.id)), utf8Data(rows.map((r) => r.text))] }),
  );
  const pq = await loadParquetWasm();
  const props = new pq.WriterPropertiesBuilder().setMaxRowGroupSize(4).build();
  await writeFile(file, pq.writeParquet(pq.Table.fromIPCStream(RecordBatchStreamWriter.writeAll([batch]).toUint8Array(true)), props));
}

/** Every capture: one glob tap per pooling over the encoder layers, the embeddings, the pooler and the ragged tokens. */
function taps(): JobInput['taps'] {
  return [
    ...POOLINGS.flatMap((reduce) => [
      { layer: 'encoder.layer.*', reduce, as: `{name}__${reduce}` },
      { layer: 'embeddings', reduce, as: `embeddings__${reduce}` },
    ]),
    { layer: 'pooler', as: 'pooler__output' },
    { layer: 'encoder.layer.3', reduce: 'none' as const, as: 'tokens' },
  ];
}

/** The rows of every part of a run, in order. */
async function readRun(files: string[]): Promise<{ tables: Table[]; ids: string[]; column: (name: string) => number[][] }> {
  const tables = await Promise.all(files.map((f) => readPartFile(f)));
  const ids = tables.flatMap((t) => [...t.getChild('id')!].map(String));
  const column = (name: string): number[][] =>
    tables.flatMap((t) => {
      const col = t.getChild(name);
      if (!col) throw new Error(`no column ${name}`);
      return [...col].map((v) => [...(v as Iterable<number>)]);
    });
  return { tables, ids, column };
}

describe('text models end to end (queue, pool, files) on the fixture', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  let sentences: Sentence[];

  beforeAll(async () => {
    tmp = await tempDir();
    sentences = (await readFile(join(TEXT, 'sentences.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Sentence);
    await writeParquet(join(tmp.dir, 'sentences.parquet'), sentences);
    // CRLF line ends and a final newline: neither is part of a row
    await writeFile(join(tmp.dir, 'sentences.txt'), sentences.map((s) => `${s.text}\r\n`).join(''));
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  const cases = [
    { source: 'jsonl', format: 'arrow', batchSize: 3, shardSize: 7, threads: 2 },
    { source: 'jsonl', format: 'parquet', batchSize: 4, shardSize: 7, threads: 2 },
    { source: 'parquet', format: 'arrow', batchSize: 4, shardSize: 7, threads: 2 },
    { source: 'txt', format: 'parquet', batchSize: 3, shardSize: 7, threads: 2 },
    // one thread: the second shard's 2 rows are a window of one batch, sorted by length like any other
    { source: 'jsonl', format: 'arrow', batchSize: 4, shardSize: 8, threads: 1 },
  ] as const;

  it.each(cases)(
    'matches every PyTorch capture to 1e-5 from a $source source, $format parts, batches of $batchSize, shards of $shardSize, $threads thread(s)',
    async ({ source, format, batchSize, shardSize, threads }) => {
      const uri = source === 'jsonl' ? join(TEXT, 'sentences.jsonl') : join(tmp.dir, `sentences.${source}`);
      const job = parseJob({
        name: `text-${source}`,
        source: source === 'txt' ? { uri } : { uri, idColumn: 'id', inputColumn: 'text' },
        model: { uri: join(TEXT, 'model.onnx') },
        taps: taps(),
        batchSize,
        shardSize,
        sink: { uri: join(tmp.dir, `out-${source}-${format}-${threads}`), format },
      });
      const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads });
      expect(summary.status).toBe('committed');
      expect(summary.rows).toBe(10);
      expect(summary.errorRows).toBe(0);
      expect(summary.output.files.map((f) => f.split('/').pop())).toEqual([`part-00000.${format}`, `part-00001.${format}`]);

      const run = await readRun(summary.output.files);
      expect(run.ids).toEqual(source === 'txt' ? sentences.map((_, i) => String(i)) : sentences.map((s) => s.id));
      const schema = run.tables[0]!.schema;
      const names = schema.fields.map((f) => f.name);
      // a glob gives one column per layer, in the model's order; the text is carried beside the id
      expect(names.slice(0, 7)).toEqual([
        'id',
        'text',
        'encoder_layer_0__mean',
        'encoder_layer_1__mean',
        'encoder_layer_2__mean',
        'encoder_layer_3__mean',
        'embeddings__mean',
      ]);
      // source.carry's default for text: each row's text, as read (the .txt file's CRs stripped)
      expect(run.tables.flatMap((t) => [...t.getChild('text')!])).toEqual(sentences.map((s) => s.text));
      expect(schema.fields[1]!.metadata.get('layertap.column')).toBe('carry');
      const layer2 = schema.fields.find((f) => f.name === 'encoder_layer_2__max')!;
      expect(layer2.metadata.get('layertap.layer')).toBe('encoder.layer.2');
      expect(layer2.metadata.get('layertap.reduce')).toBe('max');
      expect(String(layer2.type)).toBe('FixedSizeList[32]<Float32>');
      const tokens = schema.fields.find((f) => f.name === 'tokens')!;
      expect(String(tokens.type)).toBe('List<FixedSizeList[32]<Float32>>');
      expect(JSON.parse(tokens.metadata.get('layertap.shape')!)).toEqual([null, HIDDEN]);
      expect(tokens.metadata.get('layertap.layout')).toBe('tokens');

      let worst = 0;
      const compare = async (column: string, file: string): Promise<void> => {
        const ref = (await readNpy(join(EXPECTED, file))).data;
        const got = Float32Array.from(run.column(column).flat());
        expect(got.length, column).toBe(ref.length);
        const err = maxAbsDiff(got, ref);
        worst = Math.max(worst, err);
        expect(err, column).toBeLessThanOrEqual(1e-5);
      };
      for (const m of MODULES) {
        for (const p of POOLINGS) await compare(`${m.replace(/\./g, '_')}__${p}`, `${m}__${p}.npy`);
      }
      await compare('pooler__output', 'pooler__output.npy');
      // the ragged column: each row's real tokens, no padding
      const tokenRows = run.tables.flatMap((t) => [...t.getChild('tokens')!].map((v) => [...(v as Iterable<Iterable<number>>)].map((tok) => [...tok])));
      const lengths = (JSON.parse(await readFile(join(EXPECTED, 'tokens.json'), 'utf8')) as { lengths: number[] }).lengths;
      expect(tokenRows.map((r) => r.length)).toEqual(lengths);
      const ref = (await readNpy(join(EXPECTED, 'encoder.layer.3__tokens.npy'))).data;
      const err = maxAbsDiff(Float32Array.from(tokenRows.flat(2)), ref);
      worst = Math.max(worst, err);
      expect(err).toBeLessThanOrEqual(1e-5);

      const manifest = JSON.parse(await readFile(summary.output.manifest!, 'utf8')) as { truncatedRows: number };
      // two sentences are longer than 32 tokens
      expect(manifest.truncatedRows).toBe(2);
      console.log(`text parity (${source} -> ${format}, batch ${batchSize}, ${threads} thread(s)): max abs error ${worst.toExponential(2)}`);
    },
  );

  it('gives each row its own token vectors when an error row thins a window to one batch', async () => {
    const file = join(tmp.dir, 'abn.jsonl');
    const lines = [
      { id: 'A', text: 'hello world' },
      { id: 'B', text: '' },
      { id: 'N', text: null },
    ];
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const job = parseJob({
      name: 'text-abn',
      source: { uri: file, idColumn: 'id', inputColumn: 'text' },
      model: { uri: join(TEXT, 'model.onnx') },
      taps: [{ layer: 'encoder.layer.3', reduce: 'none', as: 'tokens' }],
      batchSize: 2,
      shardSize: 3,
      sink: { uri: join(tmp.dir, 'out-abn') },
    });
    const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads: 2 });
    expect(summary.status).toBe('committed');
    const run = await readRun(summary.output.files);
    expect(run.ids).toEqual(['A', 'B']);
    const tokens = run.tables.flatMap((t) => [...t.getChild('tokens')!].map((v) => [...(v as Iterable<unknown>)].length));
    // the fixture's small vocabulary spells 'hello world' in 10 word pieces, plus [CLS] and [SEP]; '' is [CLS] [SEP]
    expect(tokens).toEqual([12, 2]);
  });

  it('embeds a row of 27 MB as its first words alone, counting it truncated', async () => {
    const words = sentences.flatMap((s) => s.text.split(' '));
    const piece = Array.from({ length: 100_000 }, (_, i) => words[(i * 7) % words.length]).join(' ') + ' ';
    const long = piece.repeat(Math.ceil((27 * 1024 * 1024) / piece.length));
    // a head that is more than 32 tokens: the long row's first tokens are all in it
    const head = long.slice(0, long.indexOf(' ', 400));
    const file = join(tmp.dir, 'long.jsonl');
    const f = await open(file, 'w');
    await f.write(JSON.stringify({ id: 'head', text: head }) + '\n');
    await f.write(JSON.stringify({ id: 'long', text: long }) + '\n');
    await f.write(JSON.stringify({ id: 'short', text: 'The cat sat on the mat.' }) + '\n');
    await f.close();
    const job = parseJob({
      name: 'text-long',
      source: { uri: file, idColumn: 'id', inputColumn: 'text' },
      model: { uri: join(TEXT, 'model.onnx') },
      preprocess: { maxLength: 32 },
      taps: [
        { layer: 'encoder.layer.3', reduce: 'mean', as: 'emb' },
        { layer: 'encoder.layer.3', reduce: 'none', as: 'tokens' },
      ],
      // one row per batch: each row is embedded alone
      batchSize: 1,
      sink: { uri: join(tmp.dir, 'out-long') },
    });
    const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    expect(summary.status).toBe('committed');
    expect(summary.rows).toBe(3);
    expect(summary.errorRows).toBe(0);
    const run = await readRun(summary.output.files);
    expect(run.ids).toEqual(['head', 'long', 'short']);
    const emb = run.column('emb');
    expect(maxAbsDiff(Float32Array.from(emb[1]!), Float32Array.from(emb[0]!))).toBeLessThanOrEqual(1e-6);
    const tokens = run.tables.flatMap((t) => [...t.getChild('tokens')!].map((v) => [...(v as Iterable<Iterable<number>>)].map((tok) => [...tok])));
    expect(tokens.map((r) => r.length)).toEqual([32, 32, 9]);
    expect(maxAbsDiff(Float32Array.from(tokens[1]!.flat()), Float32Array.from(tokens[0]!.flat()))).toBeLessThanOrEqual(1e-6);
    const manifest = JSON.parse(await readFile(summary.output.manifest!, 'utf8')) as { truncatedRows: number };
    expect(manifest.truncatedRows).toBe(2);
  });

  it('keeps an empty string as a row, makes null and non-string cells error rows, and counts truncated rows', async () => {
    const long = Array.from({ length: 40 }, (_, i) => `word${i % 7}`).join(' ');
    const lines = [
      { id: 'a', text: 'The cat sat on the mat.' },
      { id: 'empty', text: '' },
      { id: 'null', text: null },
      { id: 'number', text: 42 },
      { id: 'long', text: long },
      { id: 'b', text: 'Hi!' },
    ];
    const file = join(tmp.dir, 'bad.jsonl');
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const job = parseJob({
      name: 'text-bad',
      source: { uri: file, idColumn: 'id', inputColumn: 'text' },
      model: { uri: join(TEXT, 'model.onnx') },
      taps: [{ layer: 'encoder.layer.3', reduce: 'mean', as: 'emb' }],
      batchSize: 2,
      sink: { uri: join(tmp.dir, 'out-bad') },
    });
    const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    expect(summary.status).toBe('committed');
    expect(summary.rows).toBe(4);
    expect(summary.errorRows).toBe(2);
    const run = await readRun(summary.output.files);
    expect(run.ids).toEqual(['a', 'empty', 'long', 'b']);
    expect(run.column('emb').every((r) => r.length === HIDDEN && r.every(Number.isFinite))).toBe(true);
    const errors = await readPartFile(summary.output.errorFiles[0]!);
    expect([...errors].map((r) => [String(r['id']), String(r['stage']), String(r['message'])])).toEqual([
      ['null', 'read', 'row 2: text is null'],
      ['number', 'read', 'row 3: text is not a string (got number)'],
    ]);
    const manifest = JSON.parse(await readFile(summary.output.manifest!, 'utf8')) as { truncatedRows: number };
    expect(manifest.truncatedRows).toBe(1);
  });
});
