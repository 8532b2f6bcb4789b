import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PartWriter, partExtension, readPartFile } from '../../../src/sinks/index.js';
import { partName } from '../../../src/storage/index.js';
import { loadParquetWasm } from '../../../src/storage/index.js';
import { float16ToFloat32, float32ToFloat16 } from '../../../src/types/index.js';
import { LocalSink } from '../../../src/storage/index.js';
import { partSchema } from '../../helpers/sinks.js';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-parquet-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const HALF_OK = [0, 1, -2, 0.5, 1.25, -0.375, 1024, 3.140625];

async function readParquetFile(file: string) {
  const pq = await loadParquetWasm();
  const bytes = await readFile(file);
  return { table: tableFromIPC(pq.readParquet(bytes).intoIPCStream()), bytes };
}

describe('Parquet part files', () => {
  it('are named part-00000.parquet', () => {
    expect(partName(0, partExtension('parquet'))).toBe('part-00000.parquet');
    expect(partName(3, partExtension('arrow'))).toBe('part-00003.arrow');
  });

  it('keep the Arrow schema: FixedSizeList columns, field and schema metadata, exact values', async () => {
    const sink = new LocalSink(tmp);
    const w = await PartWriter.open(await sink.createWriter('run/part-00000.parquet'), partSchema(), 'parquet');
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const emb = Float32Array.from({ length: 20 }, (_, i) => i * 0.25 - 1);
    const feat = Uint16Array.from({ length: 30 }, (_, i) => float32ToFloat16(HALF_OK[i % HALF_OK.length]!));
    await w.writeBatch(ids.slice(0, 2), { emb: { data: emb.subarray(0, 8), shape: [4] }, feat: { data: feat.subarray(0, 12), shape: [2, 3] } });
    // the writer copies: overwriting the caller's arrays after writeBatch must not change the file
    const second = emb.slice(8);
    await w.writeBatch(ids.slice(2), { emb: { data: second, shape: [4] }, feat: { data: feat.subarray(12), shape: [2, 3] } });
    second.fill(99);
    const done = await w.close();
    expect(done).toMatchObject({ rows: 5, uri: path.join(tmp, 'run', 'part-00000.parquet') });
    expect(await readdir(path.join(tmp, 'run'))).toEqual(['part-00000.parquet']);

    const { table, bytes } = await readParquetFile(done.uri);
    expect(done.bytes).toBe(bytes.byteLength);
    expect(bytes.subarray(0, 4).toString()).toBe('PAR1');
    expect(table.schema.fields.map((f) => [f.name, String(f.type)])).toEqual([
      ['id', 'Utf8'],
      ['emb', 'FixedSizeList[4]<Float32>'],
      ['feat', 'FixedSizeList[6]<Float16>'],
    ]);
    expect(Object.fromEntries(table.schema.fields[2]!.metadata)).toEqual({
      'layertap.layer': 'conv_16.2',
      'layertap.at': 'input',
      'layertap.shape': '[2,3]',
      'layertap.layout': 'nhwc',
      'layertap.reduce': 'mean',
      'layertap.normalize': 'none',
    });
    expect(Object.fromEntries(table.schema.metadata)).toMatchObject({
      'layertap.fingerprint': '0123456789abcdef',
      'layertap.runId': 'run-1',
      'layertap.runtime': 'wasm',
    });
    expect(table.getChild('id')!.toArray()).toEqual(ids);
    expect((await readPartFile(done.uri)).getChild('id')!.toArray()).toEqual(ids);
    const embBack = table.getChild('emb')!.data.flatMap((d) => Array.from(d.children[0]!.values as Float32Array));
    expect(embBack).toEqual(Array.from(emb));
    const featBack = table.getChild('feat')!.data.flatMap((d) => Array.from(d.children[0]!.values as Uint16Array).map(float16ToFloat32));
    expect(featBack).toEqual(Array.from(feat, float16ToFloat32));

    // schema metadata is also Parquet key-value metadata, for tools that ignore the Arrow schema
    const pq = await loadParquetWasm();
    const file = await pq.ParquetFile.fromFile(new Blob([bytes]));
    const kv = file.metadata().fileMetadata().keyValueMetadata();
    expect(kv.get('layertap.fingerprint')).toBe('0123456789abcdef');
    expect(kv.has('ARROW:schema')).toBe(true);
    file.free();
  });

  it('abort leaves nothing behind', async () => {
    const sink = new LocalSink(tmp);
    const w = await PartWriter.open(await sink.createWriter('run/part-00001.parquet'), partSchema(), 'parquet');
    await w.writeBatch(['a'], { emb: { data: new Float32Array(4), shape: [4] }, feat: { data: new Uint16Array(6), shape: [2, 3] } });
    await w.abort();
    expect(await readdir(path.join(tmp, 'run'))).toEqual([]);
  });
});
