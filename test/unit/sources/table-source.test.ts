import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isPermanent } from '../../../src/types/errors.js';
import {
  Binary,
  Dictionary,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  List,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Utf8,
  makeData,
  tableToIPC,
  vectorFromArray,
  Table,
} from 'apache-arrow';
import type { Data, DataType } from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadParquetWasm } from '../../../src/storage/index.js';
import { createSource, inferSourceType } from '../../../src/sources/index.js';
import type { SourceRow } from '../../../src/sources/index.js';
import { DamagedTableError } from '../../../src/sources/index.js';
import { makeFifo, releaseFifo, within } from '../../helpers/fifo.js';
import { arrowMutants, FUZZ_ROWS, parquetMutants, validArrowFile, validParquet } from '../../helpers/table-fuzz.js';
import { utf8Data } from '../../../src/sinks/arrow-data.js';
import { collect, readAll } from '../../helpers/sources.js';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-table-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const enc = new TextEncoder();

function binary(values: Uint8Array[]): Data<Binary> {
  const offsets = new Int32Array(values.length + 1);
  values.forEach((b, i) => (offsets[i + 1] = offsets[i]! + b.length));
  const data = new Uint8Array(offsets[values.length]!);
  values.forEach((b, i) => data.set(b, offsets[i]!));
  return makeData({ type: new Binary(), length: values.length, nullCount: 0, valueOffsets: offsets, data });
}

function fixedList(n: number, values: Float32Array, metadata?: Map<string, string>): { field: (name: string) => Field; data: Data } {
  const type = new FixedSizeList(n, new Field('item', new Float32(), false));
  const data = makeData({
    type,
    length: values.length / n,
    nullCount: 0,
    child: makeData({ type: new Float32(), length: values.length, nullCount: 0, data: values }),
  });
  return { field: (name) => new Field(name, type, false, metadata), data };
}

/** One record batch of named columns. */
function batch(columns: Array<[Field, Data]>): RecordBatch {
  const fields = columns.map(([f]) => f);
  const length = columns[0]![1].length;
  return new RecordBatch(new Schema(fields), makeData({ type: new Struct(fields), length, nullCount: 0, children: columns.map(([, d]) => d) }));
}

/** `rows` rows of 3 values each: row r holds [r, r + 0.5, -r]. */
function tensorBatch(first: number, rows: number, withId = true): RecordBatch {
  const values = new Float32Array(rows * 3);
  for (let r = 0; r < rows; r++) values.set([first + r, first + r + 0.5, -(first + r)], r * 3);
  const list = fixedList(3, values);
  const cols: Array<[Field, Data]> = [];
  if (withId) cols.push([new Field('id', new Utf8(), false), utf8Data(Array.from({ length: rows }, (_, r) => `row-${first + r}`))]);
  cols.push([list.field('vec'), list.data]);
  return batch(cols);
}

function tensors(rows: SourceRow[]): Array<[string | null, number[]]> {
  return rows.map((r) => [r.id, r.kind === 'tensor' ? Array.from(r.data) : [NaN]]);
}

const expected = (n: number) => Array.from({ length: n }, (_, r) => [`row-${r}`, [r, r + 0.5, -r]] as [string, number[]]);

async function writeParquet(file: string, batches: RecordBatch[], rowGroup: number): Promise<void> {
  const pq = await loadParquetWasm();
  const props = new pq.WriterPropertiesBuilder().setMaxRowGroupSize(rowGroup).build();
  await writeFile(file, pq.writeParquet(pq.Table.fromIPCStream(RecordBatchStreamWriter.writeAll(batches).toUint8Array(true)), props));
}

describe('Arrow IPC tables', () => {
  it('reads a file by record batch, shards crossing batch boundaries', async () => {
    const file = path.join(tmp, 't.arrow');
    await writeFile(file, RecordBatchFileWriter.writeAll([tensorBatch(0, 4), tensorBatch(4, 3), tensorBatch(7, 5)]).toUint8Array(true));
    const src = await createSource({ uri: file });
    expect(src.type).toBe('arrow');
    await src.check();
    expect(await src.rowShape()).toEqual([3]);
    expect(await src.count()).toBe(12);
    const { shards, rows } = await readAll(src, 5);
    expect(shards.map((s) => [s.start, s.count])).toEqual([
      [0, 5],
      [5, 5],
      [10, 2],
    ]);
    expect(tensors(rows)).toEqual(expected(12));
    // every row owns its buffer: it may be transferred to a thread
    expect(rows.every((r) => r.kind === 'tensor' && r.data.byteLength === r.data.buffer.byteLength)).toBe(true);
    await src.close();
  });

  it('reads a stream, decoding only the batches a shard covers', async () => {
    const file = path.join(tmp, 't.arrows');
    const bytes = RecordBatchStreamWriter.writeAll([tensorBatch(0, 4), tensorBatch(4, 4), tensorBatch(8, 4)]).toUint8Array(true);
    await writeFile(file, bytes);
    const src = await createSource({ uri: file, type: 'arrow' });
    expect(tensors((await readAll(src, 3)).rows)).toEqual(expected(12));
    await src.close();
    // wreck the first batch's values: a shard in the last batch never reads them
    const wrecked = Buffer.from(bytes);
    const marker = Buffer.from(new Float32Array([1, 1.5, -1]).buffer);
    const at = wrecked.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    wrecked.fill(0xff, at, at + marker.length);
    await writeFile(file, wrecked);
    const again = await createSource({ uri: file, type: 'arrow' });
    const last = await collect(again.read({ index: 3, start: 9, count: 3 }));
    expect(tensors(last)).toEqual(expected(12).slice(9));
    await again.close();
  });

  it('uses the row index as id without an id column, or the column named by idColumn', async () => {
    const file = path.join(tmp, 'noid.arrow');
    await writeFile(file, RecordBatchFileWriter.writeAll([tensorBatch(0, 3, false)]).toUint8Array(true));
    const src = await createSource({ uri: file });
    expect((await readAll(src, 2)).rows.map((r) => r.id)).toEqual(['0', '1', '2']);
    await src.close();

    const keyed = path.join(tmp, 'keyed.arrow');
    const list = fixedList(3, new Float32Array(6).fill(1));
    const keys = makeData({ type: new Int32(), length: 2, nullCount: 0, data: new Int32Array([41, 42]) });
    await writeFile(
      keyed,
      RecordBatchFileWriter.writeAll([
        batch([
          [new Field('key', new Int32(), false), keys],
          [list.field('vec'), list.data],
        ]),
      ]).toUint8Array(true),
    );
    const byKey = await createSource({ uri: keyed, idColumn: 'key', inputColumn: 'vec' });
    expect((await readAll(byKey, 10)).rows.map((r) => r.id)).toEqual(['41', '42']);
    await byKey.close();
  });

  it('says which columns exist when the id or input column is wrong or ambiguous', async () => {
    const file = path.join(tmp, 'cols.arrow');
    const list = fixedList(3, new Float32Array(3));
    const score = makeData({ type: new Float64(), length: 1, nullCount: 0, data: new Float64Array([0.5]) });
    await writeFile(
      file,
      RecordBatchFileWriter.writeAll([
        batch([
          [new Field('id', new Utf8(), false), utf8Data(['a'])],
          [list.field('vec'), list.data],
          [new Field('score', new Float64(), false), score],
        ]),
      ]).toUint8Array(true),
    );
    await expect((await createSource({ uri: file })).check()).rejects.toThrow(
      `source.inputColumn: ${file} has several columns ('id', 'vec', 'score'); name the one to embed with source.inputColumn`,
    );
    await expect((await createSource({ uri: file, inputColumn: 'vecs' })).check()).rejects.toThrow(
      `source.inputColumn: no column 'vecs' in ${file}; columns are: 'id', 'vec', 'score'`,
    );
    await expect((await createSource({ uri: file, inputColumn: 'vec', idColumn: 'name' })).check()).rejects.toThrow(/source\.idColumn: no column 'name'/);
    await expect((await createSource({ uri: file, inputColumn: 'score' })).check()).rejects.toThrow(
      "source.inputColumn: column 'score' is Float64; it must hold a list of numbers (a tensor row), image bytes (binary) or image paths (text)",
    );
  });

  it('takes the per-row shape from layertap.shape metadata, so output can be fed back in', async () => {
    const file = path.join(tmp, 'shaped.arrow');
    const list = fixedList(6, new Float32Array(12), new Map([['layertap.shape', '[1,2,3]']]));
    await writeFile(file, RecordBatchFileWriter.writeAll([batch([[list.field('emb'), list.data]])]).toUint8Array(true));
    const src = await createSource({ uri: file });
    expect(await src.rowShape()).toEqual([1, 2, 3]);
    await src.close();
  });

  it('checks variable-length list rows against the first row', async () => {
    const file = path.join(tmp, 'var.arrow');
    const type = new List(new Field('item', new Float32(), false));
    const values = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const data = makeData({
      type,
      length: 3,
      nullCount: 0,
      valueOffsets: new Int32Array([0, 3, 5, 8]),
      child: makeData({ type: new Float32(), length: 8, nullCount: 0, data: values }),
    });
    await writeFile(file, RecordBatchFileWriter.writeAll([batch([[new Field('v', type as DataType, false), data]])]).toUint8Array(true));
    const src = await createSource({ uri: file });
    expect(await src.rowShape()).toEqual([3]);
    const { rows } = await readAll(src, 10);
    expect(rows.map((r) => r.kind)).toEqual(['tensor', 'error', 'tensor']);
    expect(rows[1]).toMatchObject({ id: '1', stage: 'read', message: 'row 1: v has 2 values, expected 3 (row shape [3])' });
    await src.close();
  });
  it('reads dictionary-encoded columns from a file (schema in the footer) and from a stream', async () => {
    const ids = vectorFromArray(['a', 'b', 'a', 'c'], new Dictionary(new Utf8(), new Int32()));
    const vec = vectorFromArray(
      [
        [1, 2],
        [3, 4],
        [5, 6],
        [7, 8],
      ],
      new FixedSizeList(2, new Field('item', new Float32())),
    );
    const table = new Table({ id: ids, vec });
    for (const format of ['file', 'stream'] as const) {
      const file = path.join(tmp, `dict-${format}.arrow`);
      await writeFile(file, tableToIPC(table, format));
      const { rows } = await readAll(await createSource({ uri: file }), 3);
      expect(tensors(rows)).toEqual([
        ['a', [1, 2]],
        ['b', [3, 4]],
        ['a', [5, 6]],
        ['c', [7, 8]],
      ]);
    }
  });

  it('refuses stored lengths and row counts that do not fit the file, before planning, naming the file and the batch', async () => {
    const mutants = arrowMutants(validArrowFile());
    const refusal = async (name: string) => {
      const file = path.join(tmp, `${name.replace(/[^A-Za-z0-9]+/g, '-')}.arrow`);
      await writeFile(file, mutants.find((m) => m.name === name)!.bytes);
      const err = await (await createSource({ uri: file, inputColumn: 'pixels' })).check().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DamagedTableError);
      expect((err as DamagedTableError).file).toBe(file);
      return (err as Error).message;
    };
    // a row count of 2^31 was planned as 2^31 rows (the run never got past enqueue)
    expect(await refusal('batch 0 row count = 2147483648')).toMatch(/\.arrow: record batch 0 says it has 2147483648 rows, but its column 'id' has 8$/);
    expect(await refusal('batch 1 row count = -1')).toMatch(/record batch 1 says it has -1 rows$/);
    // a body length of 2^31 was read in one call, which aborts Node
    expect(await refusal('batch 2 bodyLength = 2147483648')).toMatch(
      /the message at byte 50832 says its body is 2147483648 bytes, but 25184 remain before the footer$/,
    );
    expect(await refusal('batch 0 bodyLength = -8')).toMatch(/the message at byte 8 says its body is -8 bytes/);
    expect(await refusal('batch 0 buffer 4 length = 1099511627776')).toMatch(
      /record batch 0 says buffer 4 is 1099511627776 bytes at offset 80 of a 25168-byte body$/,
    );
    expect(await refusal('batch 0 row count and top-level nodes = 2^40')).toMatch(
      /record batch 0 says buffer 1 \(offsets\) is 40 bytes, but its column needs at least 4398046511108$/,
    );
    expect(await refusal('footer length = -1')).toMatch(/the footer length says -1 bytes, but the file has room for 76560$/);
    expect(await refusal('footer block 1 offset = 1099511627776')).toMatch(/the footer lists 3 record batch\(es\) \[.*\], but the file holds 3 \[.*\]$/);
  });
});

describe('Parquet tables', () => {
  it('streams row groups: shards that cross row groups read exactly their rows', async () => {
    const file = path.join(tmp, 't.parquet');
    await writeParquet(file, [tensorBatch(0, 10), tensorBatch(10, 4)], 3);
    const src = await createSource({ uri: file });
    expect(src.type).toBe('parquet');
    expect(await src.rowShape()).toEqual([3]);
    expect(await src.count()).toBe(14);
    const { shards, rows } = await readAll(src, 4);
    expect(shards.map((s) => s.count)).toEqual([4, 4, 4, 2]);
    expect(tensors(rows)).toEqual(expected(14));
    const middle = await collect(src.read({ index: 9, start: 5, count: 2 }));
    expect(tensors(middle)).toEqual(expected(14).slice(5, 7));
    await src.close();

    // wreck row 1's values in the first row group: shards elsewhere never read that row group
    const bytes = await readFile(file);
    const marker = Buffer.from(new Float32Array([1, 1.5, -1]).buffer);
    const at = bytes.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    bytes.fill(0xff, at, at + marker.length);
    await writeFile(file, bytes);
    const again = await createSource({ uri: file });
    expect(tensors(await collect(again.read({ index: 3, start: 12, count: 2 })))).toEqual(expected(14).slice(12));
    const first = tensors(await collect(again.read({ index: 0, start: 0, count: 3 })));
    expect(first[1]![1]).not.toEqual([1, 1.5, -1]);
    await again.close();
  });

  it('reads only the id and input columns of a wider table, with their Arrow types', async () => {
    const file = path.join(tmp, 'wide.parquet');
    const vec = tensorBatch(0, 5);
    const label = utf8Data(Array.from({ length: 5 }, (_, r) => `label ${r}`));
    const cols: Array<[Field, Data]> = [
      [new Field('label', new Utf8(), false), label],
      [vec.schema.fields[0]!, vec.getChildAt(0)!.data[0]!],
      [vec.schema.fields[1]!, vec.getChildAt(1)!.data[0]!],
      [new Field('note', new Utf8(), false), label],
    ];
    await writeParquet(file, [batch(cols)], 2);
    const src = await createSource({ uri: file, inputColumn: 'vec' });
    // FixedSizeList survives (from the file's ARROW:schema): the row shape is known without reading a row
    expect(await src.rowShape()).toEqual([3]);
    expect(tensors((await readAll(src, 2)).rows)).toEqual(expected(5));
    await src.close();
  });

  it('refuses a file that is not Parquet, naming it', async () => {
    const file = path.join(tmp, 'fake.parquet');
    await writeFile(file, 'not parquet at all');
    await expect((await createSource({ uri: file })).check()).rejects.toThrow(`${file}: not a readable Parquet file`);
  });
  it('refuses row counts that disagree with the column chunks, and chunks outside the file, before planning', async () => {
    const mutants = parquetMutants(await validParquet());
    const refusal = async (name: string) => {
      const file = path.join(tmp, `${name.replace(/[^A-Za-z0-9]+/g, '-')}.parquet`);
      await writeFile(file, mutants.find((m) => m.name === name)!.bytes);
      const err = await (await createSource({ uri: file, inputColumn: 'pixels' })).check().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DamagedTableError);
      return (err as Error).message;
    };
    // a row group num_rows of 2^40 was planned as 2^40 rows
    expect(await refusal('row group 1 num_rows = 1099511627776')).toMatch(
      /\.parquet: row group 1 says it has 1099511627776 rows, but its column 'id' has 8 values$/,
    );
    expect(await refusal('every row count x 2^40')).toMatch(/row group 0 says it has 1099511627776 rows, but its column 'id' has 8 values$/);
    expect(await refusal('file num_rows = 2147483648')).toMatch(/the file says it has 2147483648 rows, but its row groups hold 24$/);
    expect(await refusal('row group 0 num_rows = -1')).toMatch(/row group 0 says it has -1 rows$/);
    // a chunk size that parquet-wasm's reader turned into a panic and a hang
    expect(await refusal('row group 1 pixels total_compressed_size = -1')).toMatch(/row group 1 column 'pixels\.list\.item' says it is -1 bytes$/);
    expect(await refusal('row group 1 pixels data_page_offset = 2147483648')).toMatch(
      /says it is 7398 bytes at byte 7628 \(data at 2147483648\), which is not inside the 22800 bytes before the footer$/,
    );
    expect(await refusal('footer length = -1')).toMatch(/the footer length says -1 bytes, but the file has room for 23925$/);
  });

  it('fails the shards of a damaged row group without a retry, and reads the others', async () => {
    const bytes = (await validParquet()).slice();
    // a byte of row group 2's data page (its pixel indexes)
    bytes[16208]! ^= 0x5a;
    const file = path.join(tmp, 'damaged-page.parquet');
    await writeFile(file, bytes);
    const src = await createSource({ uri: file, inputColumn: 'pixels' });
    const shards = await collect(src.plan(10));
    expect(shards.map((s) => s.count)).toEqual([10, 10, FUZZ_ROWS - 20]);
    expect((await collect(src.read(shards[0]!))).map((r) => r.kind)).toEqual(Array(10).fill('tensor'));
    // row group 2 holds rows 16..23: both later shards need it
    for (const shard of shards.slice(1)) {
      const err = await collect(src.read(shard)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isPermanent(err)).toBe(true);
      expect((err as Error).message).toBe(`${file}: cannot read row group 2: Parquet argument error: Parquet error: not enough data to read levels`);
    }
    await src.close();
  });
});

describe('JSONL tables', () => {
  it('plans by lines with byte offsets, skips blank lines, and turns bad lines into error rows', async () => {
    const file = path.join(tmp, 't.jsonl');
    const lines = [
      '{"id": "a", "x": [[1, 2], [3, 4]]}',
      '',
      '{"id": "b", "x": [[5, 6], [7, 8]]}',
      'not json',
      '{"id": "c", "x": [[9, 10], [11]]}',
      '   ',
      '{"id": 7, "x": [[0, 0], [0, 1]]}',
      '{"id": "e", "y": 1}',
    ];
    await writeFile(file, lines.join('\n'));
    const src = await createSource({ uri: file, inputColumn: 'x' });
    expect(src.type).toBe('jsonl');
    expect(await src.rowShape()).toEqual([2, 2]);
    expect(await src.count()).toBe(6);
    const { shards, rows } = await readAll(src, 4);
    expect(shards).toEqual([
      { index: 0, start: 0, count: 4, offset: 0 },
      { index: 1, start: 4, count: 2, offset: Buffer.byteLength(lines.slice(0, 6).join('\n') + '\n') },
    ]);
    // a line that is not JSON has no id: never its row index, which may be another row's id
    expect(rows.map((r) => [r.id, r.kind])).toEqual([
      ['a', 'tensor'],
      ['b', 'tensor'],
      [null, 'error'],
      ['c', 'error'],
      ['7', 'tensor'],
      ['e', 'error'],
    ]);
    expect(rows[0]!.kind === 'tensor' && Array.from(rows[0]!.data)).toEqual([1, 2, 3, 4]);
    expect(rows[2]).toMatchObject({ stage: 'read', message: expect.stringMatching(/^row 2: x: line at byte \d+ is not valid JSON/) });
    expect(rows[3]).toMatchObject({ message: 'row 3: x: the array is not a rectangular array of numbers' });
    expect(rows[5]).toMatchObject({ message: "row 5: x: the row has no 'x' field" });
    // without the offset (e.g. a hand-made shard) the reader counts its way there
    expect((await collect(src.read({ index: 1, start: 4, count: 2 }))).map((r) => r.id)).toEqual(['7', 'e']);
    await src.close();
  });
  it('turns a line longer than maxLineBytes into an error row, counted like any row but never held whole', async () => {
    const file = path.join(tmp, 'long.jsonl');
    const long = JSON.stringify({ id: 'long', x: new Array(200).fill(1) });
    const lines = ['{"id": "a", "x": [1]}', long, ' '.repeat(500), '{"id": "b", "x": [2]}', long];
    await writeFile(file, lines.join('\n'));
    const src = await createSource({ uri: file, inputColumn: 'x', maxLineBytes: 100 });
    // a blank line stays blank however long it is
    expect(await src.count()).toBe(4);
    const { shards, rows } = await readAll(src, 3);
    expect(shards.map((s) => s.count)).toEqual([3, 1]);
    expect(rows.map((r) => [r.id, r.kind])).toEqual([
      ['a', 'tensor'],
      [null, 'error'],
      ['b', 'tensor'],
      [null, 'error'],
    ]);
    const at = Buffer.byteLength(lines.slice(0, 4).join('\n') + '\n');
    expect(rows[3]).toMatchObject({
      stage: 'read',
      message: `row 3: x: line at byte ${at} is ${long.length} bytes, more than source.maxLineBytes (100); raise source.maxLineBytes to read it`,
    });
    await src.close();
    await expect(createSource({ uri: file, type: 'parquet', maxLineBytes: 100 })).rejects.toThrow(
      'source.maxLineBytes: only applies to jsonl, text sources, not parquet',
    );
  });
});

describe('image columns', () => {
  it('yields image bytes from a binary column', async () => {
    const file = path.join(tmp, 'bytes.arrow');
    const imgs = [enc.encode('png bytes 1'), enc.encode('jpeg bytes 2')];
    await writeFile(
      file,
      RecordBatchFileWriter.writeAll([
        batch([
          [new Field('id', new Utf8(), false), utf8Data(['p', 'q'])],
          [new Field('image', new Binary(), false), binary(imgs)],
        ]),
      ]).toUint8Array(true),
    );
    const src = await createSource({ uri: file });
    expect(await src.rowShape()).toBeNull();
    const { rows } = await readAll(src, 10);
    expect(rows.map((r) => [r.id, r.kind === 'bytes' ? Buffer.from(r.bytes).toString() : r.kind])).toEqual([
      ['p', 'png bytes 1'],
      ['q', 'jpeg bytes 2'],
    ]);
    await src.close();
  });

  it('reads paths relative to the table and never leaves its folder', async () => {
    const dir = path.join(tmp, 'data');
    await mkdir(path.join(dir, 'img'), { recursive: true });
    await writeFile(path.join(dir, 'img', 'a.png'), 'A');
    await writeFile(path.join(dir, 'img', 'b c.png'), 'B');
    await writeFile(path.join(tmp, 'secret.png'), 'S');
    await symlink(path.join(tmp, 'secret.png'), path.join(dir, 'img', 'link.png'));
    const file = path.join(dir, 'paths.jsonl');
    const rows = [
      { id: 'a', path: 'img/a.png' },
      { id: 'b', path: 'img/b c.png' },
      { id: 'up', path: '../secret.png' },
      { id: 'abs', path: path.join(tmp, 'secret.png') },
      { id: 'link', path: 'img/link.png' },
      { id: 'gone', path: 'img/missing.png' },
    ];
    await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const src = await createSource({ uri: file, inputColumn: 'path' });
    expect(await src.rowShape()).toBeNull();
    const got = (await readAll(src, 4)).rows;
    expect(got.map((r) => [r.id, r.kind === 'bytes' ? Buffer.from(r.bytes).toString() : r.kind])).toEqual([
      ['a', 'A'],
      ['b', 'B'],
      ['up', 'error'],
      ['abs', 'error'],
      ['link', 'error'],
      ['gone', 'error'],
    ]);
    expect(got[2]).toMatchObject({ message: expect.stringContaining("path '../secret.png' leaves the table's folder") });
    expect(got[4]).toMatchObject({ message: expect.stringMatching(/resolves to .*secret\.png, which leaves the table's folder/) });
    expect(got[5]).toMatchObject({ message: expect.stringMatching(/no such file or directory/) });
    await src.close();
  });
  it('reads only regular files of at most maxRowBytes from a path column', async () => {
    const dir = path.join(tmp, 'data');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'ok.png'), 'OK');
    await writeFile(path.join(dir, 'big.png'), 'x'.repeat(5000));
    makeFifo(path.join(dir, 'pipe.png'));
    const file = path.join(dir, 'paths.jsonl');
    await writeFile(file, ['ok', 'pipe', 'big'].map((id) => JSON.stringify({ id, path: `${id}.png` })).join('\n') + '\n');
    const src = await createSource({ uri: file, inputColumn: 'path', maxRowBytes: 4096 });
    try {
      const { rows } = await within(readAll(src, 10), 5_000, 'reading a path column with a FIFO');
      expect(rows.map((r) => [r.id, r.kind === 'error' ? r.message : r.kind])).toEqual([
        ['ok', 'bytes'],
        ['pipe', `row 1: ${dir}/pipe.png is a FIFO (named pipe), not a regular file; only regular files are read`],
        ['big', `row 2: ${dir}/big.png is 5000 bytes, more than source.maxRowBytes (4096); raise source.maxRowBytes to read it`],
      ]);
    } finally {
      releaseFifo(path.join(dir, 'pipe.png'));
      await src.close();
    }
  });
});

describe('source factory', () => {
  it('infers table types from the extension, locally and on s3://', async () => {
    for (const [name, type] of [
      ['a.arrow', 'arrow'],
      ['a.feather', 'arrow'],
      ['a.parquet', 'parquet'],
      ['a.jsonl', 'jsonl'],
      ['a.ndjson', 'jsonl'],
    ] as const) {
      await writeFile(path.join(tmp, name), '');
      expect(inferSourceType(path.join(tmp, name))).toBe(type);
    }
    expect(inferSourceType('s3://bucket/tables/x.parquet')).toBe('parquet');
    expect(inferSourceType('s3://bucket/photos')).toBe('images');
    expect((await createSource({ uri: 's3://bucket/photos' })).uri).toBe('s3://bucket/photos/');
  });

  it('refuses options that do not apply', async () => {
    const file = path.join(tmp, 'x.jsonl');
    await writeFile(file, '{"v": [1]}\n');
    await expect(createSource({ uri: tmp, idColumn: 'id' })).rejects.toThrow(
      'source.idColumn: only applies to table sources (arrow, parquet, jsonl), not images',
    );
    await expect(createSource({ uri: file, endpoint: 'http://127.0.0.1:9000' })).rejects.toThrow(`source.endpoint: only applies to s3:// sources, not ${file}`);
    await expect(createSource({ uri: 's3://bucket/x.npy', type: 'npy' })).rejects.toThrow(/\.npy sources must be local files/);
    await expect(createSource({ uri: 's3://Bad_Bucket/x' })).rejects.toThrow(/'Bad_Bucket' in s3:\/\/Bad_Bucket\/x is not a valid bucket name/);
    expect(await readFile(file, 'utf8')).toContain('v');
  });
});
