import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ImageDirSource, LocalTableLocation } from '../../../src/sources/index.js';
import type { SourceRow } from '../../../src/sources/index.js';

// A swap between the check of a path and its read, made deterministic: the next call of `call`
// on a path ending in `match` first runs `swap` (and `after` once that call is over).
interface Race {
  call: 'open' | 'stat';
  match: string;
  swap: () => Promise<void>;
  after?: () => Promise<void>;
}
const race = vi.hoisted(() => ({ next: null as Race | null, fired: 0, noProc: false }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const wrap =
    <A extends unknown[], R>(call: Race['call'], fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const r = race.next;
      if (!r || r.call !== call || !String(args[0]).endsWith(r.match)) return fn(...args);
      race.next = null;
      race.fired++;
      await r.swap();
      try {
        return await fn(...args);
      } finally {
        await r.after?.();
      }
    };
  const open = wrap('open', fs.open);
  const stat = wrap('stat', fs.stat);
  // as where no procfs is mounted
  const readlink = (async (file: string, ...rest: unknown[]) => {
    if (race.noProc && String(file).startsWith('/proc/'))
      throw Object.assign(new Error(`ENOENT: no such file or directory, readlink '${file}'`), { code: 'ENOENT' });
    return (fs.readlink as (...a: unknown[]) => Promise<string>)(file, ...rest);
  }) as typeof fs.readlink;
  return { ...fs, default: { ...fs, open, stat, readlink }, open, stat, readlink };
});

let tmp: string;
let root: string;
let outside: string;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-race-'));
  root = path.join(tmp, 'data');
  outside = path.join(tmp, 'outside');
  await mkdir(path.join(root, 'sub'), { recursive: true });
  await mkdir(outside);
  for (const f of ['a.png', 'sub/b.png', 'sub/c.png', 'z.png']) await writeFile(path.join(root, f), `inside ${f}`);
  for (const f of ['b.png', 'c.png']) await writeFile(path.join(outside, f), `OUTSIDE ${f}`);
  race.next = null;
  race.fired = 0;
  race.noProc = false;
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** `sub` becomes a symlink to ../outside (the real folder is kept aside as sub.real). */
async function swapFolder(): Promise<void> {
  await rename(path.join(root, 'sub'), path.join(root, 'sub.real'));
  await symlink('../outside', path.join(root, 'sub'));
}

async function swapFolderBack(): Promise<void> {
  await unlink(path.join(root, 'sub'));
  await rename(path.join(root, 'sub.real'), path.join(root, 'sub'));
}

async function readAll(): Promise<SourceRow[]> {
  const src = new ImageDirSource(root, { readAhead: 1 });
  const out: SourceRow[] = [];
  for await (const r of src.read({ index: 0, start: 0, count: 4, ids: ['a.png', 'sub/b.png', 'sub/c.png', 'z.png'] })) out.push(r);
  return out;
}

function shown(rows: SourceRow[]): Array<[string | null, string]> {
  return rows.map((r) => [r.id, r.kind === 'bytes' ? Buffer.from(r.bytes).toString() : r.kind === 'error' ? `${r.stage}: ${r.message}` : r.kind]);
}

describe('a folder swapped for a symlink between the check and the read', () => {
  const escaped = (id: string, file: string) => `read: ${id}: symlink resolves to ${path.join(outside, file)}, which leaves the dataset root ${root}`;

  it('after the path was checked, before it is opened: the opened file is checked, and nothing outside is read', async () => {
    race.next = { call: 'open', match: path.join('sub', 'b.png'), swap: swapFolder };
    const rows = await readAll();
    expect(race.fired).toBe(1);
    expect(shown(rows)).toEqual([
      ['a.png', 'inside a.png'],
      ['sub/b.png', escaped('sub/b.png', 'b.png')],
      ['sub/c.png', escaped('sub/c.png', 'c.png')],
      ['z.png', 'inside z.png'],
    ]);
  });

  it('after the path was resolved, before its stat: the same', async () => {
    race.next = { call: 'stat', match: path.join('sub', 'b.png'), swap: swapFolder };
    const rows = await readAll();
    expect(race.fired).toBe(1);
    expect(shown(rows)).toEqual([
      ['a.png', 'inside a.png'],
      ['sub/b.png', escaped('sub/b.png', 'b.png')],
      ['sub/c.png', escaped('sub/c.png', 'c.png')],
      ['z.png', 'inside z.png'],
    ]);
  });

  it('swapped for the open only, and back at once: the descriptor still tells where it was opened', async () => {
    race.next = { call: 'open', match: path.join('sub', 'b.png'), swap: swapFolder, after: swapFolderBack };
    const rows = await readAll();
    expect(race.fired).toBe(1);
    expect(shown(rows)).toEqual([
      ['a.png', 'inside a.png'],
      ['sub/b.png', escaped('sub/b.png', 'b.png')],
      ['sub/c.png', 'inside sub/c.png'],
      ['z.png', 'inside z.png'],
    ]);
  });

  it('the file itself swapped for a symlink to an outside file before it is opened: not followed', async () => {
    const file = path.join(root, 'sub', 'b.png');
    race.next = {
      call: 'open',
      match: path.join('sub', 'b.png'),
      swap: async () => {
        await unlink(file);
        await symlink(path.join(outside, 'b.png'), file);
      },
    };
    const rows = await readAll();
    expect(race.fired).toBe(1);
    expect(shown(rows)).toEqual([
      ['a.png', 'inside a.png'],
      ['sub/b.png', `read: sub/b.png: ${file} was swapped for a symlink while it was read; it is not read`],
      ['sub/c.png', 'inside sub/c.png'],
      ['z.png', 'inside z.png'],
    ]);
  });

  it("in a table's folder (an image-path column): refused in the same way", async () => {
    const table = path.join(root, 'table.parquet');
    const loc = new LocalTableLocation(table);
    race.next = { call: 'open', match: path.join('sub', 'b.png'), swap: swapFolder, after: swapFolderBack };
    await expect(loc.readRelative('sub/b.png')).rejects.toThrow(
      `path 'sub/b.png' resolves to ${path.join(outside, 'b.png')}, which leaves the table's folder ${root}`,
    );
    expect(race.fired).toBe(1);
    expect(Buffer.from(await loc.readRelative('sub/b.png')).toString()).toBe('inside sub/b.png');
  });

  describe.runIf(process.platform === 'linux')('without procfs: the descriptor is compared with the path resolved again', () => {
    beforeEach(() => {
      race.noProc = true;
    });

    it('swapped before the open and left so: the path leads outside', async () => {
      race.next = { call: 'open', match: path.join('sub', 'b.png'), swap: swapFolder };
      const rows = await readAll();
      expect(race.fired).toBe(1);
      expect(shown(rows)).toEqual([
        ['a.png', 'inside a.png'],
        ['sub/b.png', escaped('sub/b.png', 'b.png')],
        ['sub/c.png', escaped('sub/c.png', 'c.png')],
        ['z.png', 'inside z.png'],
      ]);
    });

    it('swapped for the open only: the file opened is not the one the path leads to', async () => {
      race.next = { call: 'open', match: path.join('sub', 'b.png'), swap: swapFolder, after: swapFolderBack };
      const rows = await readAll();
      expect(race.fired).toBe(1);
      expect(shown(rows)).toEqual([
        ['a.png', 'inside a.png'],
        ['sub/b.png', `read: sub/b.png: ${path.join(root, 'sub', 'b.png')} changed while it was read; it is not read`],
        ['sub/c.png', 'inside sub/c.png'],
        ['z.png', 'inside z.png'],
      ]);
    });
  });
});
