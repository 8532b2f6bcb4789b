import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FixedSizeList, type Float, Float16, Float32, Precision, Utf8, tableFromIPC } from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResolvedTap } from '../../../src/config/resolved.js';
import { PartWriter, buildSchema, describeSchema, manifestTap, readArrowFile, schemaColumns, writeErrorsFile } from '../../../src/sinks/index.js';
import type { ErrorRecord } from '../../../src/sinks/index.js';
import { errorsName, partName, runPrefix } from '../../../src/storage/index.js';
import { float16ToFloat32, float32ToFloat16 } from '../../../src/types/index.js';
import type { TapColumn } from '../../../src/types/features.js';
import { LocalSink } from '../../../src/storage/index.js';
import type { SinkWriter } from '../../../src/storage/index.js';
import { PART_TAPS, partSchema } from '../../helpers/sinks.js';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-part-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Values exactly representable in float16, so a round trip is exact. */
const HALF_OK = [0, 1, -2, 0.5, 1.25, -0.375, 1024, 3.140625, -65504, 2 ** -14, 0.0999755859375, 7];

function batch(rows: number, seed: number) {
  const emb = Float32Array.from({ length: rows * 4 }, (_, i) => seed + i * 0.25);
  const feat = Uint16Array.from({ length: rows * 6 }, (_, i) => float32ToFloat16(HALF_OK[(i + seed) % HALF_OK.length] as number));
  return { emb: { data: emb, shape: [4] }, feat: { data: feat, shape: [2, 3] } };
}

/** A SinkWriter that records chunks in memory. */
function memoryWriter() {
  const chunks: Uint8Array[] = [];
  const state = { committed: false, aborted: false };
  const writer: SinkWriter = {
    async write(chunk) {
      chunks.push(chunk);
    },
    async commit() {
      state.committed = true;
      return { uri: 'mem://part', bytes: chunks.reduce((a, c) => a + c.byteLength, 0) };
    },
    async abort() {
      state.aborted = true;
    },
  };
  const bytes = () => Buffer.concat(chunks.map((c) => Buffer.from(c)));
  return { writer, chunks, state, bytes };
}

describe('buildSchema', () => {
  it('has id then one FixedSizeList column per tap, with the contract metadata', () => {
    const s = partSchema();
    expect(s.fields.map((f) => f.name)).toEqual(['id', 'emb', 'feat']);
    expect(s.fields[0]?.type).toBeInstanceOf(Utf8);
    const emb = s.fields[1]?.type as FixedSizeList;
    expect(emb).toBeInstanceOf(FixedSizeList);
    expect(emb.listSize).toBe(4);
    expect(emb.valueType).toBeInstanceOf(Float32);
    expect(emb.valueField.name).toBe('item');
    const feat = s.fields[2]?.type as FixedSizeList;
    expect(feat.listSize).toBe(6);
    expect(feat.valueType).toBeInstanceOf(Float16);
    expect(Object.fromEntries(s.fields[2]?.metadata ?? [])).toEqual({
      'layertap.layer': 'conv_16.2',
      'layertap.at': 'input',
      'layertap.shape': '[2,3]',
      'layertap.layout': 'nhwc',
      'layertap.reduce': 'mean',
      'layertap.normalize': 'none',
    });
    expect(Object.fromEntries(s.metadata)).toEqual({
      'layertap.fingerprint': '0123456789abcdef',
      'layertap.model': '/models/m/model.json',
      'layertap.runtime': 'wasm',
      'layertap.version': '0.1.0',
      'layertap.runId': 'run-1',
    });
    expect(describeSchema(s)[1]).toMatchObject({ name: 'emb', type: 'FixedSizeList[4]<Float32>', nullable: false });
  });

  it("lays a text model's columns out as 'pooled', its ragged ones as 'tokens', and reads back what the manifest records", () => {
    const text = buildSchema({
      taps: PART_TAPS,
      shapes: { emb: [4], feat: [2, 3] },
      ragged: new Set(['emb']),
      layout: 'nchw',
      text: true,
      fingerprint: 'f',
      model: 'm',
      runtime: 'onnx',
      version: 'v',
      runId: 'r',
    });
    const columns: Record<string, TapColumn> = { emb: { shape: [null, 4], layout: 'tokens' }, feat: { shape: [2, 3], layout: 'pooled' } };
    expect(schemaColumns(text)).toEqual(columns);
    expect(text.fields[2]?.metadata.get('layertap.layout')).toBe('pooled');
    const written = { columns, shapes: { emb: [4], feat: [2, 3] }, layout: 'nchw' as const };
    expect(PART_TAPS.map((t) => manifestTap(t, written))).toEqual([
      { ...PART_TAPS[0], shape: [null, 4], layout: 'tokens' },
      { ...PART_TAPS[1], shape: [2, 3], layout: 'pooled' },
    ]);
    // an image model's columns keep the runtime's layout
    expect(schemaColumns(partSchema())).toEqual({ emb: { shape: [4], layout: 'nhwc' }, feat: { shape: [2, 3], layout: 'nhwc' } });
  });

  it('names the tap when its shape is missing or its column name clashes', () => {
    const base = { layout: 'nchw' as const, fingerprint: 'f', model: 'm', runtime: 'onnx', version: 'v', runId: 'r' };
    expect(() => buildSchema({ ...base, taps: PART_TAPS, shapes: { emb: [4] } })).toThrow(/taps\[1\] \(feat\): no per-row shape/);
    const first = PART_TAPS[0] as ResolvedTap;
    expect(() => buildSchema({ ...base, taps: [{ ...first, as: 'id' }], shapes: { id: [1] } })).toThrow(/taps\[0\]\.as: 'id' is reserved/);
    expect(() => buildSchema({ ...base, taps: [first], shapes: { emb: [0] } })).toThrow(/taps\[0\] \(emb\): per-row shape \[0\]/);
  });
});

describe('PartWriter', () => {
  it('writes batches that read back with exact ids, values, list sizes and metadata', async () => {
    const sink = new LocalSink(tmp);
    const key = `${runPrefix('ds', '0123456789abcdef', 'run-1')}/${partName(0)}`;
    const writer = await PartWriter.open(await sink.createWriter(key), partSchema());
    const b1 = batch(3, 0);
    const b2 = batch(2, 5);
    await writer.writeBatch(['a.png', 'b/c.png', 'ü.jpg'], b1);
    await writer.writeBatch(['d.png', 'e.png'], b2);
    expect(await sink.exists(key)).toBe(false);
    const res = await writer.close();
    expect(res.rows).toBe(5);
    expect(res.uri).toBe(path.join(tmp, 'ds/0123456789abcdef/run-1/part-00000.arrow'));
    expect(await readdir(path.dirname(res.uri))).toEqual(['part-00000.arrow']);

    const table = await readArrowFile(res.uri);
    expect(res.bytes).toBeGreaterThan(0);
    expect(table.batches).toHaveLength(2);
    expect(table.numRows).toBe(5);
    expect(table.getChild('id')?.toArray()).toEqual(['a.png', 'b/c.png', 'ü.jpg', 'd.png', 'e.png']);

    const emb = table.getChild('emb');
    expect((emb?.type as FixedSizeList).listSize).toBe(4);
    const expectedEmb = [...b1.emb.data, ...b2.emb.data];
    for (let r = 0; r < 5; r++) {
      expect(Array.from(emb?.get(r)?.toArray() as Float32Array)).toEqual(expectedEmb.slice(r * 4, r * 4 + 4));
    }
    const feat = table.getChild('feat');
    expect((feat?.type as FixedSizeList).listSize).toBe(6);
    expect(((feat?.type as FixedSizeList).valueType as Float).precision).toBe(Precision.HALF);
    const expectedFeat = [...b1.feat.data, ...b2.feat.data].map(float16ToFloat32);
    for (let r = 0; r < 5; r++) {
      // Arrow's Float16 vector yields numbers; its storage is the same half bits
      expect(Array.from(feat?.get(r) ?? [])).toEqual(expectedFeat.slice(r * 6, r * 6 + 6));
    }
    expect(table.schema.metadata.get('layertap.runId')).toBe('run-1');
    expect(table.schema.fields[1]?.metadata.get('layertap.shape')).toBe('[4]');
    expect(table.schema.fields[2]?.metadata.get('layertap.layer')).toBe('conv_16.2');
  });

  it('streams chunks to the sink as batches are written, straight from the tap buffers', async () => {
    const mem = memoryWriter();
    const writer = await PartWriter.open(mem.writer, partSchema());
    const afterOpen = mem.chunks.length;
    expect(afterOpen).toBeGreaterThan(0); // magic + schema already handed on
    const b = batch(4, 1);
    await writer.writeBatch(['0', '1', '2', '3'], b);
    expect(mem.chunks.length).toBeGreaterThan(afterOpen);
    // zero copy: the body chunk for each tap column views the caller's own buffer
    expect(mem.chunks.some((c) => c.buffer === b.emb.data.buffer && c.byteLength === b.emb.data.byteLength)).toBe(true);
    expect(mem.chunks.some((c) => c.buffer === b.feat.data.buffer && c.byteLength === b.feat.data.byteLength)).toBe(true);
    const res = await writer.close();
    expect(mem.state.committed).toBe(true);
    const table = tableFromIPC(mem.bytes());
    expect(table.numRows).toBe(4);
    expect(res).toEqual({ rows: 4, bytes: mem.bytes().length, uri: 'mem://part' });
  });

  it('converts float32 data for a float16 column', async () => {
    const mem = memoryWriter();
    const writer = await PartWriter.open(mem.writer, partSchema());
    const feat = Float32Array.from({ length: 6 }, (_, i) => HALF_OK[i] as number);
    await writer.writeBatch(['x'], { emb: { data: new Float32Array(4), shape: [4] }, feat: { data: feat, shape: [2, 3] } });
    await writer.close();
    const table = tableFromIPC(mem.bytes());
    expect(Array.from(table.getChild('feat')?.get(0) ?? [])).toEqual(HALF_OK.slice(0, 6));
  });

  it('writes a valid empty part when no batch was written', async () => {
    const mem = memoryWriter();
    const writer = await PartWriter.open(mem.writer, partSchema());
    await writer.close();
    const table = tableFromIPC(mem.bytes());
    expect(table.numRows).toBe(0);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['id', 'emb', 'feat']);
  });

  it('names the column when features do not match the schema', async () => {
    const writer = await PartWriter.open(memoryWriter().writer, partSchema());
    const b = batch(2, 0);
    await expect(writer.writeBatch(['a'], b)).rejects.toThrow(/tap column 'emb' has 8 values for 1 rows; expected 1 x 4 = 4/);
    await expect(writer.writeBatch(['a', 'b'], { emb: b.emb })).rejects.toThrow(/no features for tap column 'feat'/);
    await expect(writer.writeBatch(['a', 'b'], { ...b, feat: { data: b.feat.data, shape: [6] } })).rejects.toThrow(
      /'feat' has per-row shape \[6\], but the part's schema says \[2,3\]/,
    );
    await expect(writer.writeBatch(['a', 'b'], { ...b, extra: b.emb })).rejects.toThrow(/'extra' is not in the part's schema/);
  });

  it('abort leaves no file behind', async () => {
    const sink = new LocalSink(tmp);
    const writer = await PartWriter.open(await sink.createWriter('r/part-00003.arrow'), partSchema());
    await writer.writeBatch(['a'], batch(1, 0));
    await writer.abort();
    expect(await readdir(path.join(tmp, 'r'))).toEqual([]);
  });
});

describe('writeErrorsFile', () => {
  it('writes id (null for a row without one), stage, message as utf8 columns and the source position as int64', async () => {
    const sink = new LocalSink(tmp);
    const rows: ErrorRecord[] = [
      { id: 'a.jpg', stage: 'decode', message: 'not a decodable image: unsupported or unrecognised image format', position: 0 },
      { id: null, stage: 'read', message: 'row 3000000000: x: line at byte 7 is not valid JSON', position: 3_000_000_000 },
      { id: 'b/ü.png', stage: 'read', message: 'b/ü.png: path leaves the dataset root', position: 2 ** 40 + 5 },
    ];
    const uri = await writeErrorsFile(sink, `r/${errorsName(2)}`, rows);
    expect(uri).toBe(path.join(tmp, 'r/errors-00002.arrow'));
    const table = await readArrowFile(uri);
    expect(table.schema.fields.map((f) => [f.name, String(f.type), f.nullable])).toEqual([
      ['id', 'Utf8', true],
      ['stage', 'Utf8', false],
      ['message', 'Utf8', false],
      ['position', 'Int64', false],
    ]);
    expect(table.toArray().map((r) => r.toJSON())).toEqual(rows.map((r) => ({ ...r, position: BigInt(r.position) })));
  });
});

describe('half floats', () => {
  it('round to nearest even and keep specials', () => {
    expect(float32ToFloat16(1)).toBe(0x3c00);
    expect(float32ToFloat16(-2)).toBe(0xc000);
    expect(float32ToFloat16(65504)).toBe(0x7bff);
    expect(float32ToFloat16(65520)).toBe(0x7c00); // rounds up to infinity
    expect(float32ToFloat16(Infinity)).toBe(0x7c00);
    expect(Number.isNaN(float16ToFloat32(float32ToFloat16(NaN)))).toBe(true);
    expect(float32ToFloat16(2 ** -24)).toBe(1); // smallest subnormal
    expect(float32ToFloat16(2 ** -26)).toBe(0);
    expect(float32ToFloat16(1 + 2 ** -11)).toBe(0x3c00); // tie goes to even
    expect(float32ToFloat16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    for (const v of HALF_OK) expect(float16ToFloat32(float32ToFloat16(v))).toBe(v);
  });
});
