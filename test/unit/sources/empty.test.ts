import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Field, FixedSizeList, Float32, List, Schema, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobConfigError, parseJob } from '../../../src/config/index.js';
import { resolveJob } from '../../../src/pipeline/index.js';
import { estimateRun } from '../../../src/queue/plan-estimate.js';
import { loadParquetWasm } from '../../../src/storage/index.js';
import { createSource, writeNpy } from '../../../src/sources/index.js';
import { SEED_MODEL } from '../../helpers/index.js';
import { TEXT_DIR } from '../../helpers/models.js';
import { readAll } from '../../helpers/sources.js';

const TEXT_MODEL = path.join(TEXT_DIR, 'model.onnx');

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-empty-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A job over `source` into the temp folder: the seed model (one [28, 28, 1] float32 input), or the text model. */
function job(source: Record<string, unknown>, model: 'seed' | 'text' = 'seed', extra: Record<string, unknown> = {}) {
  return parseJob({
    name: 'empty',
    source,
    model: { uri: model === 'seed' ? SEED_MODEL : TEXT_MODEL },
    taps: [{ layer: model === 'seed' ? 'linear_1.1' : 'pooler' }],
    sink: { uri: path.join(tmp, 'out') },
    ...extra,
  });
}

const listField = (name: string) => new Field(name, new List(new Field('item', new Float32(), true)), true);

/** An Arrow IPC file (or a Parquet file) of `schema` with no row. */
async function emptyTable(file: string, schema: Schema, format: 'arrow' | 'parquet'): Promise<void> {
  const table = new Table(schema);
  if (format === 'arrow') return writeFile(file, tableToIPC(table, 'file'));
  const pq = await loadParquetWasm();
  await writeFile(file, pq.writeParquet(pq.Table.fromIPCStream(tableToIPC(table, 'stream'))));
}

describe('empty sources', () => {
  it('every kind of source lists no shard, and plan resolves the job and sizes it at 0 rows', async () => {
    const images = path.join(tmp, 'images');
    await mkdir(path.join(images, 'sub'), { recursive: true });
    await writeFile(path.join(images, 'notes.txt'), 'not an image');
    const npy = path.join(tmp, 'empty.npy');
    await writeNpy(npy, new Float32Array(0), [0, 28, 28, 1]);
    const fixedArrow = path.join(tmp, 'fixed.arrow');
    await emptyTable(
      fixedArrow,
      new Schema([new Field('id', new Utf8(), false), new Field('v', new FixedSizeList(784, new Field('item', new Float32(), false)), false)]),
      'arrow',
    );
    const listArrow = path.join(tmp, 'list.arrow');
    await emptyTable(listArrow, new Schema([new Field('id', new Utf8(), false), listField('v')]), 'arrow');
    const listParquet = path.join(tmp, 'list.parquet');
    await emptyTable(listParquet, new Schema([new Field('id', new Utf8(), false), listField('v')]), 'parquet');
    const textParquet = path.join(tmp, 'text.parquet');
    await emptyTable(textParquet, new Schema([new Field('id', new Utf8(), false), new Field('text', new Utf8(), true)]), 'parquet');
    const jsonl = path.join(tmp, 'empty.jsonl');
    await writeFile(jsonl, '');
    const blank = path.join(tmp, 'blank.jsonl');
    await writeFile(blank, '\n  \n\n');
    const txt = path.join(tmp, 'empty.txt');
    await writeFile(txt, '');

    const cases: Array<[string, ReturnType<typeof job>]> = [
      ['images folder without images', job({ uri: images })],
      ['.npy of shape [0, 28, 28, 1]', job({ uri: npy })],
      ['Arrow file with a FixedSizeList column', job({ uri: fixedArrow })],
      ['Arrow file with a List column', job({ uri: listArrow })],
      ['Parquet file with a List column', job({ uri: listParquet })],
      ['Parquet file with a text column, text model', job({ uri: textParquet, inputColumn: 'text' }, 'text')],
      ['0-byte JSONL, seed model', job({ uri: jsonl })],
      ['0-byte JSONL, text model, columns named', job({ uri: jsonl, idColumn: 'doc', inputColumn: 'body' }, 'text')],
      ['JSONL of blank lines', job({ uri: blank, inputColumn: 'pixels' })],
      ['0-byte .txt, text model', job({ uri: txt }, 'text')],
    ];
    const got: Array<[string, number, number, number, number]> = [];
    for (const [what, j] of cases) {
      const resolved = await resolveJob(j);
      const src = await createSource(resolved.source);
      await src.check();
      const { shards, rows } = await readAll(src, 4);
      const count = await src.count();
      await src.close();
      const estimate = await estimateRun(resolved);
      got.push([what, count, shards.length + rows.length, estimate.rows, estimate.shards]);
    }
    expect(got).toEqual(cases.map(([what]) => [what, 0, 0, 0, 0]));
  });

  it('an empty table gets the fingerprint its rows would give it: tensors stay tensors, image paths stay images', async () => {
    // the model's input is [28, 28, 1]: a list column feeds it 784 values a row
    const listArrow = path.join(tmp, 'list.arrow');
    await emptyTable(listArrow, new Schema([listField('v')]), 'arrow');
    const full = path.join(tmp, 'full.arrow');
    await writeFile(
      full,
      tableToIPC(new Table({ v: vectorFromArray([Array.from({ length: 784 }, () => 0.5)], new List(new Field('item', new Float32(), true))) }), 'file'),
    );
    const empty = await resolveJob(job({ uri: listArrow }));
    const rows = await resolveJob(job({ uri: full }));
    expect(empty.preprocess).toBeNull();
    expect(empty.inputShape).toEqual([28, 28, 1]);
    expect(empty.fingerprint).toBe(rows.fingerprint);

    // a JSONL file without a row says nothing; a model of one 4-d image input of 1 or 3 channels takes images
    const jsonl = path.join(tmp, 'empty.jsonl');
    await writeFile(jsonl, '');
    const paths = path.join(tmp, 'paths.jsonl');
    await writeFile(paths, `${JSON.stringify({ id: 'a', path: 'a.png' })}\n`);
    const emptyImages = await resolveJob(job({ uri: jsonl }));
    const withPaths = await resolveJob(job({ uri: paths }));
    expect(emptyImages.preprocess).not.toBeNull();
    expect(emptyImages.fingerprint).toBe(withPaths.fingerprint);
    // preprocessing applies to it as to any image source
    const sized = await resolveJob(job({ uri: jsonl }, 'seed', { preprocess: { size: [28, 28], range: [-1, 1] } }));
    expect(sized.preprocess?.mean).toEqual([0.5]);
  });

  it('still checks the columns an empty Arrow or Parquet table declares', async () => {
    const file = path.join(tmp, 'list.parquet');
    await emptyTable(file, new Schema([new Field('id', new Utf8(), false), listField('v')]), 'parquet');
    const err = await resolveJob(job({ uri: file, inputColumn: 'vec' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobConfigError);
    expect((err as JobConfigError).message).toBe(`source.inputColumn: no column 'vec' in ${file}; columns are: 'id', 'v'`);
  });
});

describe('JSONL column types come from the first non-null value', () => {
  it('a text column whose first cell is null: that row is an error row, the others are text', async () => {
    const file = path.join(tmp, 'texts.jsonl');
    await writeFile(file, ['{"id": "a", "text": null}', '{"id": "b", "text": "hello"}', '{"id": "c", "text": null}', '{"id": "d", "text": ""}'].join('\n'));
    const resolved = await resolveJob(job({ uri: file, inputColumn: 'text' }, 'text'));
    const src = await createSource(resolved.source);
    const { rows } = await readAll(src, 3);
    await src.close();
    expect(rows).toEqual([
      { id: 'a', kind: 'error', stage: 'read', message: 'row 0: text is null' },
      // a text job carries its text column into the output by default
      { id: 'b', kind: 'text', text: 'hello', carry: ['hello'] },
      { id: 'c', kind: 'error', stage: 'read', message: 'row 2: text is null' },
      { id: 'd', kind: 'text', text: '', carry: [''] },
    ]);
  });

  it('a tensor column whose first cells are null or missing takes its shape from the first array', async () => {
    const file = path.join(tmp, 'vectors.jsonl');
    const row = (k: number) => Array.from({ length: 784 }, (_, i) => (i + k) / 1000);
    await writeFile(
      file,
      [{ id: 'a', v: null }, { id: 'b' }, { id: 'c', v: row(1) }, { id: 'd', v: row(2) }, 'not json', { id: 'e', v: [1, 2] }]
        .map((l) => (typeof l === 'string' ? l : JSON.stringify(l)))
        .join('\n'),
    );
    const src = await createSource({ uri: file, inputColumn: 'v' });
    expect(await src.rowShape()).toEqual([784]);
    const resolved = await resolveJob(job({ uri: file, inputColumn: 'v' }));
    expect(resolved.inputShape).toEqual([28, 28, 1]);
    const { rows } = await readAll(src, 4);
    await src.close();
    expect(rows.map((r) => [r.id, r.kind === 'error' ? r.message : r.kind])).toEqual([
      ['a', 'row 0: v is null'],
      ['b', "row 1: v: the row has no 'v' field"],
      ['c', 'tensor'],
      ['d', 'tensor'],
      [null, expect.stringMatching(/^row 4: v: line at byte \d+ is not valid JSON/)],
      ['e', 'row 5: v has 2 values, expected 784 (row shape [784])'],
    ]);
  });

  it('a variable-length Arrow list column whose first cells are null takes its shape from the first list', async () => {
    const file = path.join(tmp, 'var.arrow');
    const type = new List(new Field('item', new Float32(), true));
    await writeFile(file, tableToIPC(new Table({ v: vectorFromArray([null, null, [1, 2, 3], [4, 5]], type) }), 'file'));
    const src = await createSource({ uri: file });
    expect(await src.rowShape()).toEqual([3]);
    const { rows } = await readAll(src, 10);
    await src.close();
    expect(rows.map((r) => [r.id, r.kind === 'error' ? r.message : r.kind])).toEqual([
      ['0', 'row 0: v is null'],
      ['1', 'row 1: v is null'],
      ['2', 'tensor'],
      ['3', 'row 3: v has 2 values, expected 3 (row shape [3])'],
    ]);
  });

  it('a column that is null in every row of the file: every row is an error row, and the job plans', async () => {
    const file = path.join(tmp, 'nulls.jsonl');
    await writeFile(file, ['{"id": "a", "v": null}', '{"id": "b", "v": null}'].join('\n'));
    const resolved = await resolveJob(job({ uri: file, inputColumn: 'v' }));
    const src = await createSource(resolved.source);
    const { rows } = await readAll(src, 10);
    await src.close();
    expect(rows.map((r) => [r.id, r.kind === 'error' ? r.message : r.kind])).toEqual([
      ['a', 'row 0: v is null'],
      ['b', 'row 1: v is null'],
    ]);
  });

  it('a column null in the first 1000 rows of a longer file cannot be typed: the job fails naming the rule; for text it is text', async () => {
    const file = path.join(tmp, 'late.jsonl');
    const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ id: `r${i}`, v: null }));
    lines.push(JSON.stringify({ id: 'late', v: 'a sentence' }));
    await writeFile(file, lines.join('\n'));
    const err = await resolveJob(job({ uri: file, inputColumn: 'v' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobConfigError);
    expect((err as JobConfigError).fields).toEqual(['source.inputColumn']);
    expect((err as JobConfigError).message).toBe(
      `source.inputColumn: column 'v' is null in every row read to tell its type (the first 1000 rows or 16 MiB of ${file}); ` +
        'a JSONL column takes the type of its first non-null value among them',
    );
    const text = await resolveJob(job({ uri: file, inputColumn: 'v' }, 'text'));
    const src = await createSource(text.source);
    const { rows } = await readAll(src, 512);
    await src.close();
    expect(rows.length).toBe(1001);
    expect(rows[1000]).toEqual({ id: 'late', kind: 'text', text: 'a sentence', carry: ['a sentence'] });
    expect(rows.filter((r) => r.kind === 'error').length).toBe(1000);
  });

  it('refuses a file none of whose first rows is a JSON object, naming the first problem', async () => {
    const file = path.join(tmp, 'csv.jsonl');
    await writeFile(file, 'id,text\na,hello\n');
    const err = await resolveJob(job({ uri: file }, 'text')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobConfigError);
    expect((err as JobConfigError).message).toBe(
      `source.uri: ${file}: none of the first 2 row(s) is a JSON object (the line at byte 0 is not valid JSON: Unexpected token 'i', "id,text" is not valid JSON); ` +
        'each line must be one object such as {"id": "a", "input": [...]}',
    );
  });
});
