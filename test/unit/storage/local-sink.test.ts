import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalSink, createSink } from '../../../src/storage/index.js';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-sink-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const KEY = 'products/abcd/run1/part-00000.arrow';

describe('LocalSink', () => {
  it('writes to a hidden temp file and shows nothing under the final name until commit', async () => {
    const sink = new LocalSink(tmp);
    const w = await sink.createWriter(KEY);
    await w.write(new Uint8Array([1, 2, 3]));
    await w.write(Buffer.from('abc'));
    const dir = path.join(tmp, 'products/abcd/run1');
    const names = await readdir(dir);
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^\.part-00000\.arrow\.[0-9a-f]+\.tmp$/);
    expect(await sink.exists(KEY)).toBe(false);
    expect(await sink.list('products/')).toEqual([]);

    const res = await w.commit();
    expect(res).toEqual({ uri: path.join(dir, 'part-00000.arrow'), bytes: 6 });
    expect(await readdir(dir)).toEqual(['part-00000.arrow']);
    expect([...(await readFile(res.uri))]).toEqual([1, 2, 3, 97, 98, 99]);
    await expect(w.write(new Uint8Array(1))).rejects.toThrow(/writer is committed/);
  });

  it("check(dataset) writes and removes a probe and leaves no folder behind; a file in the folder's place is named", async () => {
    const sink = new LocalSink(path.join(tmp, 'out'));
    await sink.check('products');
    // nothing existed: nothing is left, not even the root
    expect(await readdir(tmp)).toEqual([]);
    await writeFile(path.join(tmp, 'blocked'), 'x');
    const blocked = new LocalSink(tmp);
    await expect(blocked.check('blocked')).rejects.toThrow(new RegExp(`^sink\\.uri: cannot write in ${path.join(tmp, 'blocked')}: EEXIST`));
    await blocked.check('fine');
    expect((await readdir(tmp)).sort()).toEqual(['blocked']);
  });

  it('removes the temp file on abort and leaves an existing final file as it was', async () => {
    const sink = new LocalSink(tmp);
    await sink.put(KEY, 'old');
    const w = await sink.createWriter(KEY);
    await w.write(Buffer.from('new content'));
    await w.abort();
    expect(await readdir(path.join(tmp, 'products/abcd/run1'))).toEqual(['part-00000.arrow']);
    expect(Buffer.from((await sink.get(KEY)) as Uint8Array).toString()).toBe('old');
  });

  it('replaces a file atomically on a second commit (a retried shard)', async () => {
    const sink = new LocalSink(tmp);
    await sink.put(KEY, 'first');
    const uri = await sink.put(KEY, 'second');
    expect(uri).toBe(sink.resolve(KEY));
    expect(await readFile(uri, 'utf8')).toBe('second');
    expect(await sink.list('products')).toEqual([KEY]);
  });

  it('puts, gets and checks existence', async () => {
    const sink = new LocalSink(tmp);
    expect(await sink.get('a/b.json')).toBeNull();
    expect(await sink.exists('a/b.json')).toBe(false);
    await sink.put('a/b.json', '{"x":1}');
    await sink.put('a/_SUCCESS', '');
    expect(Buffer.from((await sink.get('a/b.json')) as Uint8Array).toString()).toBe('{"x":1}');
    expect(await sink.exists('a/b.json')).toBe(true);
    expect(await sink.exists('a')).toBe(false); // a folder is not an object
    expect(await readFile(path.join(tmp, 'a/_SUCCESS'), 'utf8')).toBe('');
  });

  it('lists committed keys by string prefix, recursively, without hidden or temp files', async () => {
    const sink = new LocalSink(tmp);
    await sink.put('ds/fp/run1/part-00001.arrow', 'x');
    await sink.put('ds/fp/run1/part-00000.arrow', 'x');
    await sink.put('ds/fp/run1/_manifest.json', '{}');
    await sink.put('ds/fp/run10/part-00000.arrow', 'x');
    await sink.put('other/file', 'x');
    await writeFile(path.join(tmp, 'ds/fp/run1/.hidden'), 'x');
    const pending = await sink.createWriter('ds/fp/run1/part-00002.arrow');
    await pending.write(Buffer.from('partial'));

    expect(await sink.list('ds/fp/run1/')).toEqual(['ds/fp/run1/_manifest.json', 'ds/fp/run1/part-00000.arrow', 'ds/fp/run1/part-00001.arrow']);
    expect(await sink.list('ds/fp/run1/part-')).toEqual(['ds/fp/run1/part-00000.arrow', 'ds/fp/run1/part-00001.arrow']);
    expect(await sink.list('ds/fp/run1')).toHaveLength(4); // object-store semantics: run10 matches too
    expect(await sink.list('')).toHaveLength(5);
    expect(await sink.list('missing/')).toEqual([]);
    await pending.abort();
  });

  it('cleanup removes leftover temp files only', async () => {
    const sink = new LocalSink(tmp);
    await sink.put('r/part-00000.arrow', 'ok');
    const crashed = await sink.createWriter('r/part-00001.arrow');
    await crashed.write(Buffer.from('half'));
    await writeFile(path.join(tmp, 'r/.errors-00001.arrow.deadbeef.tmp'), 'x');
    await writeFile(path.join(tmp, 'keep.tmp'), 'not ours');
    expect((await readdir(path.join(tmp, 'r'))).length).toBe(3);

    await sink.cleanup('r/', { olderThanMs: 60_000 });
    expect((await readdir(path.join(tmp, 'r'))).length).toBe(3); // all too fresh

    await sink.cleanup('r/');
    expect(await readdir(path.join(tmp, 'r'))).toEqual(['part-00000.arrow']);
    expect(await readFile(path.join(tmp, 'keep.tmp'), 'utf8')).toBe('not ours');
  });

  it('refuses keys that escape the root', async () => {
    const sink = new LocalSink(tmp);
    expect(() => sink.resolve('../x')).toThrow(/not a plain relative path/);
    await expect(sink.createWriter('a/../../x')).rejects.toThrow(/not a plain relative path/);
    await expect(sink.createWriter('')).rejects.toThrow(/names the sink root/);
  });
});

describe('createSink', () => {
  it('accepts local paths and file:// URLs', async () => {
    expect((await createSink(tmp)).uri).toBe(tmp);
    expect((await createSink(pathToFileURL(tmp).href)).uri).toBe(tmp);
    expect((await createSink('./out')).uri).toBe(path.resolve('out'));
  });

  it('takes s3:// to the S3 sink and explains other schemes', async () => {
    expect((await createSink('s3://bucket/prefix/')).uri).toBe('s3://bucket/prefix');
    await expect(createSink('gs://bucket')).rejects.toThrow(/sink\.uri: unsupported scheme gs:\/\//);
  });
});
