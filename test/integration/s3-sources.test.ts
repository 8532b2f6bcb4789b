import { Field, RecordBatch, RecordBatchFileWriter, Schema, Struct, Utf8, makeData } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSource, S3ImageSource } from '../../src/sources/index.js';
import type { SourceRow } from '../../src/sources/index.js';
import { startS3Server, testBucket, type S3TestServer } from '../helpers/s3.js';
import { collect, readAll } from '../helpers/sources.js';

const text = (r: SourceRow) => (r.kind === 'bytes' ? Buffer.from(r.bytes).toString() : r.kind);

describe('S3 sources against s3rver', () => {
  let s3: S3TestServer;
  const bucket = testBucket('srcs');

  beforeAll(async () => {
    s3 = await startS3Server([bucket]);
    const keys = [
      'photos/b.png',
      'photos/a.jpg',
      'photos/sub dir/c+d#e.PNG',
      'photos/ü/名前.webp',
      'photos/z.JPEG',
      'photos/readme.txt',
      'photos/.cache/x.png',
      'photos-2/outside.png',
      'tables/img/one.png',
      'tables/img/two words.png',
      'secret.png',
    ];
    for (const k of keys) await s3.put(bucket, k, `bytes of ${k}`);
    await s3.put(bucket, 'photos/folder/', '');
    const paths = [
      { id: 'one', path: 'img/one.png' },
      { id: 'two', path: 'img/two words.png' },
      { id: 'escape', path: '../secret.png' },
      { id: 'gone', path: 'img/missing.png' },
    ];
    await s3.put(bucket, 'tables/paths.jsonl', paths.map((p) => JSON.stringify(p)).join('\n') + '\n');
    const fields = [new Field('id', new Utf8(), false), new Field('path', new Utf8(), false)];
    const enc = new TextEncoder();
    const utf8 = (values: string[]) => {
      const bytes = values.map((v) => enc.encode(v));
      const offsets = new Int32Array(values.length + 1);
      bytes.forEach((b, i) => (offsets[i + 1] = offsets[i]! + b.length));
      const data = new Uint8Array(offsets[values.length]!);
      bytes.forEach((b, i) => data.set(b, offsets[i]!));
      return makeData({ type: new Utf8(), length: values.length, nullCount: 0, valueOffsets: offsets, data });
    };
    const batch = new RecordBatch(
      new Schema(fields),
      makeData({ type: new Struct(fields), length: 2, nullCount: 0, children: [utf8(['one', 'two']), utf8(['img/one.png', 'img/two words.png'])] }),
    );
    await s3.put(bucket, 'tables/paths.arrow', RecordBatchFileWriter.writeAll([batch]).toUint8Array(true));
  });
  afterAll(async () => {
    await s3?.close();
  });

  it('lists an image prefix across pages, in code-point order, skipping hidden keys and other files', async () => {
    const src = new S3ImageSource(bucket, 'photos', { connection: { endpoint: s3.endpoint }, pageSize: 2 });
    await src.check();
    expect(src.uri).toBe(`s3://${bucket}/photos/`);
    expect(await src.count()).toBe(5);
    const { shards, rows } = await readAll(src, 2);
    expect(shards.map((s) => s.ids)).toEqual([['a.jpg', 'b.png'], ['sub dir/c+d#e.PNG', 'z.JPEG'], ['ü/名前.webp']]);
    expect(rows.map((r) => [r.id, text(r)])).toEqual(
      ['a.jpg', 'b.png', 'sub dir/c+d#e.PNG', 'z.JPEG', 'ü/名前.webp'].map((id) => [id, `bytes of photos/${id}`]),
    );
    // an id that would climb out of the prefix is refused, a missing key is an error row
    const odd = await collect(src.read({ index: 0, start: 0, count: 2, ids: ['../secret.png', 'nope.png'] }));
    expect(odd.map((r) => [r.id, r.kind])).toEqual([
      ['../secret.png', 'error'],
      ['nope.png', 'error'],
    ]);
    expect(odd[1]).toMatchObject({
      stage: 'read',
      message: expect.stringMatching(/GetObject s3:\/\/.*\/photos\/nope\.png failed at http:\/\/127\.0\.0\.1:\d+ \(HTTP 404 NoSuchKey/),
    });
    await src.close();
  });

  it('reads table objects, resolving image paths as keys next to the table', async () => {
    for (const name of ['paths.jsonl', 'paths.arrow']) {
      const src = await createSource({ uri: `s3://${bucket}/tables/${name}`, endpoint: s3.endpoint, inputColumn: 'path' });
      await src.check();
      expect(await src.rowShape()).toBeNull();
      const { rows } = await readAll(src, 3);
      const want: Array<[string, string]> = [
        ['one', 'bytes of tables/img/one.png'],
        ['two', 'bytes of tables/img/two words.png'],
      ];
      if (name.endsWith('.jsonl')) want.push(['escape', 'error'], ['gone', 'error']);
      expect(rows.map((r) => [r.id, text(r)])).toEqual(want);
      if (name.endsWith('.jsonl')) {
        expect(rows[2]).toMatchObject({ message: expect.stringContaining(`path '../secret.png' leaves the table's prefix s3://${bucket}/tables/`) });
      }
      await src.close();
    }
  });

  it('turns objects over maxRowBytes into error rows that name the limit', async () => {
    // 'bytes of photos/a.jpg' is 21 bytes, 'bytes of photos/z.JPEG' 22
    const src = new S3ImageSource(bucket, 'photos', { connection: { endpoint: s3.endpoint }, maxRowBytes: 21 });
    const rows = await collect(src.read({ index: 0, start: 0, count: 2, ids: ['a.jpg', 'z.JPEG'] }));
    expect(rows.map((r) => [r.id, text(r)])).toEqual([
      ['a.jpg', 'bytes of photos/a.jpg'],
      ['z.JPEG', 'error'],
    ]);
    expect(rows[1]).toMatchObject({
      stage: 'read',
      message: `z.JPEG: s3://${bucket}/photos/z.JPEG is 22 bytes, more than source.maxRowBytes (21); raise source.maxRowBytes to read it`,
    });
    const table = await createSource({ uri: `s3://${bucket}/tables/paths.jsonl`, endpoint: s3.endpoint, inputColumn: 'path', maxRowBytes: 30 });
    const { rows: paths } = await readAll(table, 10);
    // 'bytes of tables/img/one.png' is 27 bytes, 'bytes of tables/img/two words.png' 33
    expect(paths.slice(0, 2).map((r) => [r.id, r.kind === 'error' ? r.message : text(r)])).toEqual([
      ['one', 'bytes of tables/img/one.png'],
      ['two', `row 1: s3://${bucket}/tables/img/two words.png is 33 bytes, more than source.maxRowBytes (30); raise source.maxRowBytes to read it`],
    ]);
    await table.close();
  });

  it('names a missing bucket or object', async () => {
    await expect(new S3ImageSource('no-such-bucket-y', 'x', { connection: { endpoint: s3.endpoint } }).check()).rejects.toThrow(
      `source.uri: bucket 'no-such-bucket-y' does not exist at ${s3.endpoint}`,
    );
    const src = await createSource({ uri: `s3://${bucket}/tables/none.parquet`, endpoint: s3.endpoint });
    await expect(src.check()).rejects.toThrow(`source.uri: no object s3://${bucket}/tables/none.parquet (bucket '${bucket}' has no key 'tables/none.parquet')`);
  });
});
