import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NpySource, readNpy, readNpyHeader, writeNpy } from '../../../src/sources/index.js';
import type { ShardSpec, SourceRow } from '../../../src/sources/index.js';
import { SEED_DIR } from '../../helpers/models.js';
import { collect } from '../../helpers/sources.js';

const FIXTURES = SEED_DIR;

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-npy-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function ramp(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3);
}

/** A .npy v1.0 file with an arbitrary header dict and body. */
function rawNpy(dict: string, body: Uint8Array, major = 1): Buffer {
  const pre = major === 1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const head = Buffer.alloc(total, 0x20);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(head);
  if (major === 1) head.writeUInt16LE(total - pre, 8);
  else head.writeUInt32LE(total - pre, 8);
  head.write(dict, pre, 'latin1');
  head[total - 1] = 0x0a;
  return Buffer.concat([head, body]);
}

describe('npy read/write', () => {
  it('round-trips float32 data with writeNpy/readNpy and aligns the data to 64 bytes', async () => {
    const file = path.join(tmp, 'a.npy');
    const data = ramp(5 * 2 * 3);
    await writeNpy(file, data, [5, 2, 3]);
    const header = await readNpyHeader(file);
    expect(header).toMatchObject({ version: [1, 0], descr: '<f4', dtype: 'float32', shape: [5, 2, 3] });
    expect(header.dataOffset % 64).toBe(0);
    expect((await stat(file)).size).toBe(header.dataOffset + data.byteLength);
    const back = await readNpy(file);
    expect(back.shape).toEqual([5, 2, 3]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it('writes 1-d shapes numpy-style and refuses mismatched data', async () => {
    const file = path.join(tmp, 'v.npy');
    await writeNpy(file, ramp(4), [4]);
    expect((await readFile(file)).toString('latin1')).toContain("'shape': (4,)");
    await expect(writeNpy(file, ramp(5), [2, 2])).rejects.toThrow(/needs 4 values, data has 5/);
  });

  it('reads a fixture written by numpy', async () => {
    const { shape, data } = await readNpy(path.join(FIXTURES, 'input_nhwc.npy'));
    expect(shape).toEqual([3, 28, 28, 1]);
    expect(data).toHaveLength(3 * 28 * 28);
    expect(data.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('converts <f8, >f4 and <f2 to float32, and reads format 2.0 headers', async () => {
    const f8 = Buffer.alloc(3 * 8);
    [1.5, -2.25, 1e-3].forEach((v, i) => f8.writeDoubleLE(v, i * 8));
    await writeFile(path.join(tmp, 'f8.npy'), rawNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f8));
    expect(Array.from((await readNpy(path.join(tmp, 'f8.npy'))).data)).toEqual([1.5, -2.25, Math.fround(1e-3)]);

    const be = Buffer.alloc(2 * 4);
    [3.5, -1].forEach((v, i) => be.writeFloatBE(v, i * 4));
    await writeFile(path.join(tmp, 'be.npy'), rawNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2), }", be, 2));
    const beArr = await readNpy(path.join(tmp, 'be.npy'));
    expect(beArr.shape).toEqual([1, 2]);
    expect(Array.from(beArr.data)).toEqual([3.5, -1]);

    const f2 = Buffer.alloc(3 * 2);
    [0x3c00, 0xc000, 0x3800].forEach((h, i) => f2.writeUInt16LE(h, i * 2)); // 1, -2, 0.5
    await writeFile(path.join(tmp, 'f2.npy'), rawNpy("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", f2));
    expect(Array.from((await readNpy(path.join(tmp, 'f2.npy'))).data)).toEqual([1, -2, 0.5]);
  });

  it('explains unsupported files', async () => {
    const body = Buffer.alloc(16);
    await writeFile(path.join(tmp, 'i4.npy'), rawNpy("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", body));
    await expect(readNpy(path.join(tmp, 'i4.npy'))).rejects.toThrow(/i4\.npy: dtype '<i4' is not supported.*astype\(np\.float32\)/);
    await writeFile(path.join(tmp, 'f.npy'), rawNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", body));
    await expect(readNpy(path.join(tmp, 'f.npy'))).rejects.toThrow(/f\.npy: .*Fortran.*ascontiguousarray/);
    await writeFile(path.join(tmp, 'x.npy'), 'not numpy at all');
    await expect(readNpy(path.join(tmp, 'x.npy'))).rejects.toThrow(/x\.npy: not a NumPy \.npy file/);
  });
});

describe('NpySource', () => {
  async function tenRows(): Promise<{ file: string; data: Float32Array }> {
    const file = path.join(tmp, 'rows.npy');
    const data = ramp(10 * 4);
    await writeNpy(file, data, [10, 2, 2]);
    return { file, data };
  }

  it('describes the array and plans row ranges', async () => {
    const { file } = await tenRows();
    const src = new NpySource(file);
    expect(src.type).toBe('npy');
    expect(src.uri).toBe(file);
    expect(await src.count()).toBe(10);
    expect(await src.rowShape()).toEqual([2, 2]);
    expect(await collect(src.plan(4))).toEqual([
      { index: 0, start: 0, count: 4 },
      { index: 1, start: 4, count: 4 },
      { index: 2, start: 8, count: 2 },
    ]);
    await src.close();
  });

  it.each([1, 20, 4096])('reads exactly the shard rows with their ids (chunkBytes %i)', async (chunkBytes) => {
    const { file, data } = await tenRows();
    const src = new NpySource(file, { chunkBytes });
    const shards = await collect(src.plan(4));
    const rows = await collect(src.read(shards[1] as ShardSpec));
    expect(rows.map((r) => r.id)).toEqual(['4', '5', '6', '7']);
    rows.forEach((r, i) => {
      expect(r.kind).toBe('tensor');
      const t = r as Extract<SourceRow, { kind: 'tensor' }>;
      expect(Array.from(t.data)).toEqual(Array.from(data.subarray((4 + i) * 4, (5 + i) * 4)));
      // rows are views of the chunk they were read in: at least one row, at most chunkBytes
      const rowsPerChunk = Math.max(1, Math.floor(chunkBytes / 16));
      expect(t.data.buffer.byteLength).toBe(16 * Math.min(rowsPerChunk, 4 - Math.floor(i / rowsPerChunk) * rowsPerChunk));
    });
    const last = await collect(src.read(shards[2] as ShardSpec));
    expect(last.map((r) => r.id)).toEqual(['8', '9']);
  });

  it('reads a batch of rows into one buffer of its own when given batchRows', async () => {
    const { file, data } = await tenRows();
    const src = new NpySource(file);
    const rows = (await collect(src.read({ index: 0, start: 1, count: 7 }, { batchRows: 3 }))) as Array<Extract<SourceRow, { kind: 'tensor' }>>;
    expect(rows.map((r) => r.id)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    const buffers = [...new Set(rows.map((r) => r.data.buffer))];
    // chunks of 3, 3 and 1 rows, each a fresh buffer that the rows fill exactly
    expect(buffers.map((b) => b.byteLength)).toEqual([48, 48, 16]);
    rows.forEach((r, i) => {
      expect(r.data.byteOffset).toBe((i % 3) * 16);
      expect(Array.from(r.data)).toEqual(Array.from(data.subarray((1 + i) * 4, (2 + i) * 4)));
    });
  });

  it('converts float64 and big-endian rows to float32', async () => {
    // shape (3, 2) float64 big-endian, values 0.5, 1.5, ...
    const values = [0.5, 1.5, 2.5, 3.5, -4.25, 1e10];
    const header = "{'descr': '>f8', 'fortran_order': False, 'shape': (3, 2), }";
    const pad = 64 - ((10 + header.length + 1) % 64);
    const text = header + ' '.repeat(pad % 64) + '\n';
    const head = Buffer.alloc(10);
    head.write('\x93NUMPY', 0, 'latin1');
    head[6] = 1;
    head[7] = 0;
    head.writeUInt16LE(text.length, 8);
    const body = Buffer.alloc(values.length * 8);
    values.forEach((v, i) => body.writeDoubleBE(v, i * 8));
    const file = path.join(tmp, 'be64.npy');
    await writeFile(file, Buffer.concat([head, Buffer.from(text, 'latin1'), body]));
    const src = new NpySource(file);
    const rows = (await collect(src.read({ index: 0, start: 0, count: 3 }, { batchRows: 2 }))) as Array<Extract<SourceRow, { kind: 'tensor' }>>;
    expect(rows.map((r) => Array.from(r.data))).toEqual([
      [0.5, 1.5],
      [2.5, 3.5],
      [-4.25, Math.fround(1e10)],
    ]);
  });

  it('rejects a shard outside the array', async () => {
    const { file } = await tenRows();
    const src = new NpySource(file);
    await expect(collect(src.read({ index: 5, start: 8, count: 4 }))).rejects.toThrow(/rows 8\.\.11 .* has 10 rows/);
  });

  it('reports a truncated file at count() and plan() time, naming it', async () => {
    const { file } = await tenRows();
    const full = (await stat(file)).size;
    await truncate(file, full - 5);
    const src = new NpySource(file);
    await expect(src.count()).rejects.toThrow(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: truncated \\.npy file`));
    await expect(collect(src.plan(4))).rejects.toThrow(/truncated \.npy file: shape \(10, 2, 2\) of <f4 needs \d+ bytes, the file has \d+/);
  });

  it('says so when the file does not exist', async () => {
    const src = new NpySource(path.join(tmp, 'missing.npy'));
    await expect(src.count()).rejects.toThrow(/source\.uri: no such file or directory: .*missing\.npy/);
  });
});
