import { mkdir, mkdtemp, rm, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageDirSource, compareCodePoints } from '../../../src/sources/index.js';
import type { ShardSpec, SourceRow } from '../../../src/sources/index.js';
import { makeFifo, releaseFifo, within } from '../../helpers/fifo.js';
import { collect } from '../../helpers/sources.js';

let tmp: string;
let root: string;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-imgdir-'));
  root = path.join(tmp, 'data');
  await mkdir(root);
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function put(rel: string, content = `bytes of ${rel}`): Promise<void> {
  const file = path.join(root, ...rel.split('/'));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
}

const SEVEN = ['a.png', 'b/c.jpg', 'b/a.JPG', 'B.png', 'z.webp', 'dir.d/x.tiff', 'ä.gif'];
const SORTED = ['B.png', 'a.png', 'b/a.JPG', 'b/c.jpg', 'dir.d/x.tiff', 'z.webp', 'ä.gif'];

describe('ImageDirSource', () => {
  it('lists images recursively in byte order with POSIX ids, skipping dot-files and other extensions', async () => {
    for (const f of SEVEN) await put(f);
    await put('.hidden.png');
    await put('.git/objects/x.png');
    await put('b/.cache/y.jpg');
    await put('notes.txt');
    await put('README');
    const src = new ImageDirSource(root);
    expect(src.type).toBe('images');
    expect(await src.rowShape()).toBeNull();
    expect(await src.count()).toBe(7);
    const shards = await collect(src.plan(3));
    expect(shards).toEqual([
      { index: 0, start: 0, count: 3, ids: SORTED.slice(0, 3) },
      { index: 1, start: 3, count: 3, ids: SORTED.slice(3, 6) },
      { index: 2, start: 6, count: 1, ids: SORTED.slice(6) },
    ]);
  });

  it('streams its listing in the code-point order of whole paths, where a folder and a file share a stem', async () => {
    // '.' < '/' < '0': a file 'a.jpg', the folder 'a/' and a file 'a0.jpg' interleave by whole path
    const files = ['a0.jpg', 'a/b.jpg', 'a.jpg', 'a/a/z.jpg', 'a-b.jpg', 'ab/c.jpg', 'a/a.jpg'];
    for (const f of files) await put(f);
    const ids = (await collect(new ImageDirSource(root).plan(100))).flatMap((s) => s.ids ?? []);
    expect(ids).toEqual([...files].sort(compareCodePoints));
    expect(ids).toEqual(['a-b.jpg', 'a.jpg', 'a/a.jpg', 'a/a/z.jpg', 'a/b.jpg', 'a0.jpg', 'ab/c.jpg']);
  });

  it('reads each file of a shard in order as bytes', async () => {
    for (const f of SEVEN) await put(f);
    const src = new ImageDirSource(root, { readAhead: 2 });
    const [, second] = await collect(src.plan(3));
    const rows = await collect(src.read(second as ShardSpec));
    expect(rows.map((r) => r.id)).toEqual(['b/c.jpg', 'dir.d/x.tiff', 'z.webp']);
    for (const r of rows) {
      expect(r.kind).toBe('bytes');
      if (r.kind === 'bytes') expect(Buffer.from(r.bytes).toString()).toBe(`bytes of ${r.id}`);
    }
  });

  it('turns a file that vanished after planning into a read error row, keeping the others', async () => {
    for (const f of ['1.png', '2.png', '3.png']) await put(f);
    const src = new ImageDirSource(root);
    const [shard] = await collect(src.plan(10));
    await unlink(path.join(root, '2.png'));
    const rows = await collect(src.read(shard as ShardSpec));
    expect(rows.map((r) => [r.id, r.kind])).toEqual([
      ['1.png', 'bytes'],
      ['2.png', 'error'],
      ['3.png', 'bytes'],
    ]);
    const err = rows[1] as Extract<SourceRow, { kind: 'error' }>;
    expect(err.stage).toBe('read');
    expect(err.message).toMatch(/2\.png.*no such file/);
  });

  it('rejects a symlink that resolves outside the root, and follows one that stays inside', async () => {
    await put('ok.png', 'inside');
    await writeFile(path.join(tmp, 'secret.png'), 'outside');
    await symlink(path.join(tmp, 'secret.png'), path.join(root, 'evil.png'));
    await symlink(path.join(root, 'ok.png'), path.join(root, 'alias.png'));
    const src = new ImageDirSource(root);
    const [shard] = await collect(src.plan(10));
    expect(shard?.ids).toEqual(['alias.png', 'evil.png', 'ok.png']);
    const rows = await collect(src.read(shard as ShardSpec));
    expect(rows[0]).toMatchObject({ id: 'alias.png', kind: 'bytes' });
    expect(rows[1]).toMatchObject({ id: 'evil.png', kind: 'error', stage: 'read' });
    expect((rows[1] as { message: string }).message).toMatch(/leaves the dataset root/);
    expect(rows[2]).toMatchObject({ id: 'ok.png', kind: 'bytes' });
  });

  it('reads only regular files: a symlink to a FIFO or to a folder is an error row, and the FIFO is never opened', async () => {
    await put('a.png', 'A');
    await put('z.png', 'Z');
    const fifo = path.join(root, 'pipe');
    makeFifo(fifo);
    await symlink(fifo, path.join(root, 'p.png'));
    await mkdir(path.join(root, 'folder'));
    await symlink(path.join(root, 'folder'), path.join(root, 'f.png'));
    const src = new ImageDirSource(root);
    const [shard] = await collect(src.plan(10));
    expect(shard?.ids).toEqual(['a.png', 'f.png', 'p.png', 'z.png']);
    try {
      // opening the FIFO to read it would wait for a writer forever
      const rows = await within(collect(src.read(shard as ShardSpec)), 5_000, 'reading a shard with a FIFO');
      expect(rows.map((r) => [r.id, r.kind === 'error' ? r.message : r.kind])).toEqual([
        ['a.png', 'bytes'],
        ['f.png', `f.png: ${root}/f.png is a directory, not a regular file; only regular files are read`],
        ['p.png', `p.png: ${root}/p.png is a FIFO (named pipe), not a regular file; only regular files are read`],
        ['z.png', 'bytes'],
      ]);
      expect(rows.filter((r) => r.kind === 'error').every((r) => r.kind === 'error' && r.stage === 'read')).toBe(true);
    } finally {
      releaseFifo(fifo);
    }
  });

  it('turns a file over maxRowBytes into an error row that names the limit, without reading it', async () => {
    await put('small.png', 'x'.repeat(1000));
    await put('big.png', 'x'.repeat(1001));
    const rows = await collect(new ImageDirSource(root, { maxRowBytes: 1000 }).read({ index: 0, start: 0, count: 2, ids: ['big.png', 'small.png'] }));
    expect(rows[0]).toEqual({
      id: 'big.png',
      kind: 'error',
      stage: 'read',
      message: `big.png: ${root}/big.png is 1001 bytes, more than source.maxRowBytes (1000); raise source.maxRowBytes to read it`,
    });
    expect(rows[1]).toMatchObject({ id: 'small.png', kind: 'bytes' });
    // the default is 256 MiB: a (sparse) file of 300 MiB is refused from its size alone
    await put('huge.png', '');
    await truncate(path.join(root, 'huge.png'), 300 * 1024 * 1024);
    const [huge] = await collect(new ImageDirSource(root).read({ index: 0, start: 0, count: 1, ids: ['huge.png'] }));
    expect(huge).toMatchObject({
      kind: 'error',
      message: `huge.png: ${root}/huge.png is 314572800 bytes, more than source.maxRowBytes (268435456); raise source.maxRowBytes to read it`,
    });
    expect(() => new ImageDirSource(root, { maxRowBytes: 0 })).toThrow('source.maxRowBytes must be a positive integer (bytes), got 0');
  });

  it('rejects ids with .. segments or absolute paths in a shard spec', async () => {
    await writeFile(path.join(tmp, 'secret.png'), 'outside');
    const src = new ImageDirSource(root);
    const rows = await collect(src.read({ index: 0, start: 0, count: 2, ids: ['../secret.png', '/etc/passwd'] }));
    for (const r of rows) {
      expect(r).toMatchObject({ kind: 'error', stage: 'read' });
      expect((r as { message: string }).message).toMatch(/leaves the dataset root/);
    }
  });

  it('honours custom extensions, case-insensitively and with or without dots', async () => {
    for (const f of ['a.png', 'b.PNG', 'c.jpg', 'd.raw']) await put(f);
    const src = new ImageDirSource(root, { extensions: ['.png', 'RAW'] });
    const [shard] = await collect(src.plan(100));
    expect(shard?.ids).toEqual(['a.png', 'b.PNG', 'd.raw']);
  });

  it('has no shards for an empty directory and errors on a shard without ids', async () => {
    const src = new ImageDirSource(root);
    expect(await collect(src.plan(5))).toEqual([]);
    await expect(collect(src.read({ index: 3, start: 0, count: 1 }))).rejects.toThrow(/shard 3 .* has no ids/);
    await expect(collect(src.plan(0))).rejects.toThrow(/shardSize must be a positive integer/);
  });
});

describe('compareCodePoints', () => {
  it('orders like UTF-8 bytes, not UTF-16 code units', () => {
    const emoji = '\u{1F600}';
    const privateUse = '\uE000';
    expect(emoji < privateUse).toBe(true); // the JS default gets this wrong
    expect(compareCodePoints(emoji, privateUse)).toBeGreaterThan(0);
    expect(Buffer.compare(Buffer.from(emoji), Buffer.from(privateUse))).toBeGreaterThan(0);
    const names = ['b', 'a/b', 'a.b', 'B', emoji, privateUse, 'ä', 'a'];
    const byBytes = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...names].sort(compareCodePoints)).toEqual(byBytes);
  });
});
