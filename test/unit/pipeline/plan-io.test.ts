import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobConfigError, parseJob } from '../../../src/config/index.js';
import { resolveJob } from '../../../src/pipeline/index.js';
import { SEED_MODEL } from '../../helpers/index.js';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-resolve-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function job(source: Record<string, unknown>, sink: Record<string, unknown> = { uri: path.join(tmp, 'out') }, extra: Record<string, unknown> = {}) {
  return parseJob({ name: 't', source, model: { uri: SEED_MODEL }, taps: [{ layer: 'linear_1.1' }], sink, ...extra });
}

async function configError(p: Promise<unknown>): Promise<JobConfigError> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(JobConfigError);
  return err as JobConfigError;
}

describe('resolveJob with table sources and sinks', () => {
  it('feeds a flat list column to a model with a 3-d row of as many values', async () => {
    const file = path.join(tmp, 'rows.jsonl');
    await writeFile(file, `${JSON.stringify({ id: 'a', pixels: new Array(784).fill(0.5) })}\n`);
    const resolved = await resolveJob(job({ uri: file }, { uri: path.join(tmp, 'out'), format: 'parquet' }));
    expect(resolved.source).toEqual({ uri: file, type: 'jsonl' });
    expect(resolved.inputShape).toEqual([28, 28, 1]);
    expect(resolved.preprocess).toBeNull();
    expect(resolved.sink).toEqual({ uri: path.join(tmp, 'out'), format: 'parquet' });
  });

  it('names the input column when its rows do not fit the model', async () => {
    const file = path.join(tmp, 'rows.jsonl');
    await writeFile(file, `${JSON.stringify({ id: 'a', v: [1, 2, 3] })}\n`);
    const err = await configError(resolveJob(job({ uri: file, idColumn: 'id', inputColumn: 'v' })));
    expect(err.message).toBe('source.inputColumn: rows have shape [3] (3 values) but the model takes [28,28,1] per row');
    expect(err.fields).toEqual(['source.inputColumn']);
  });

  it('treats a column of image paths as images: preprocessing applies', async () => {
    const file = path.join(tmp, 'paths.jsonl');
    await writeFile(file, `${JSON.stringify({ id: 'a', path: 'a.png' })}\n`);
    const resolved = await resolveJob(job({ uri: file }, undefined, { preprocess: { fit: 'contain' } }));
    expect(resolved.preprocess).toMatchObject({ size: [28, 28], channels: 1, fit: 'contain' });
    expect(resolved.inputShape).toEqual([28, 28, 1]);
  });

  it('reports column problems under the field that causes them', async () => {
    const file = path.join(tmp, 'rows.jsonl');
    await writeFile(file, `${JSON.stringify({ a: [1], b: [2] })}\n`);
    const err = await configError(resolveJob(job({ uri: file })));
    expect(err.fields).toEqual(['source.inputColumn']);
    expect(err.message).toMatch(/^source\.inputColumn: .* has several columns \('a', 'b'\)/);
  });

  it('refuses S3 settings on local paths and a sink that is a file', async () => {
    const file = path.join(tmp, 'rows.jsonl');
    await writeFile(file, `${JSON.stringify({ v: new Array(784).fill(0) })}\n`);
    let err = await configError(resolveJob(job({ uri: file }, { uri: path.join(tmp, 'out'), endpoint: 'http://127.0.0.1:9000' })));
    expect(err.message).toBe(`sink.endpoint: only applies to s3:// sinks, not ${path.join(tmp, 'out')}`);
    expect(err.fields).toEqual(['sink.endpoint']);
    err = await configError(resolveJob(job({ uri: file }, { uri: file })));
    expect(err.message).toBe(`sink.uri: ${file} exists and is not a folder`);
    err = await configError(resolveJob(job({ uri: file, region: 'eu-west-1' })));
    expect(err.fields).toEqual(['source.region']);
  });

  it('passes the size limits to the source, and refuses them where they do not apply', async () => {
    const file = path.join(tmp, 'rows.jsonl');
    await writeFile(file, `${JSON.stringify({ v: new Array(784).fill(0) })}\n`);
    const resolved = await resolveJob(job({ uri: file, maxLineBytes: 65536, maxRowBytes: 1024 }));
    expect(resolved.source).toEqual({ uri: file, type: 'jsonl', maxLineBytes: 65536, maxRowBytes: 1024 });
    const parquet = path.join(tmp, 'rows.parquet');
    await writeFile(parquet, 'PAR1');
    let err = await configError(resolveJob(job({ uri: parquet, maxLineBytes: 65536 })));
    expect(err.message).toBe('source.maxLineBytes: only applies to jsonl, text sources, not parquet');
    expect(err.fields).toEqual(['source.maxLineBytes']);
    const npy = path.join(tmp, 'rows.npy');
    await writeFile(npy, '');
    err = await configError(resolveJob(job({ uri: npy, maxRowBytes: 1024 })));
    expect(err.fields).toEqual(['source.maxRowBytes']);
    expect(err.message).toMatch(/^source\.maxRowBytes: only applies to sources that read a file per row/);
  });

  it('refuses a JSONL table whose first rows are all longer than source.maxLineBytes, naming the field', async () => {
    const file = path.join(tmp, 'long.jsonl');
    const line = JSON.stringify({ v: new Array(784).fill(0.25) });
    await writeFile(file, `${line}\n`);
    const err = await configError(resolveJob(job({ uri: file, maxLineBytes: 1000 })));
    expect(err.fields).toEqual(['source.maxLineBytes']);
    expect(err.message).toBe(
      `source.maxLineBytes: the first row of ${file} is ${line.length} bytes, more than 1000; columns are taken from the first rows: raise source.maxLineBytes to read it`,
    );
  });

  it('validates the new job fields', () => {
    expect(() => job({ uri: 's3://b/x', endpoint: 'localhost:9000' })).toThrow(/source\.endpoint: must be an http:\/\/ or https:\/\/ URL/);
  });

  it('checks source types, sink formats and backends against the registries, naming the nearest', async () => {
    const file = path.join(tmp, 'rows.jsonl');
    await writeFile(file, `${JSON.stringify({ v: new Array(784).fill(0) })}\n`);
    let err = await configError(resolveJob(job({ uri: file }, { uri: path.join(tmp, 'out'), format: 'parqet' })));
    expect(err.message).toBe("sink.format: unknown format 'parqet' (did you mean 'parquet'?); formats are: arrow, parquet, lancedb");
    expect(err.fields).toEqual(['sink.format']);
    err = await configError(resolveJob(job({ uri: file, type: 'parqet' })));
    expect(err.message).toBe("source.type: unknown type 'parqet' (did you mean 'parquet'?); types are: images, npy, arrow, parquet, jsonl, text");
    expect(err.fields).toEqual(['source.type']);
    err = await configError(resolveJob(job({ uri: file, type: 'tsv' })));
    expect(err.message).toBe("source.type: unknown type 'tsv'; types are: images, npy, arrow, parquet, jsonl, text");
    err = await configError(resolveJob(job({ uri: file }, undefined, { model: { uri: SEED_MODEL, backend: 'wsam' } })));
    expect(err.message).toBe("model.backend: unknown backend 'wsam' (did you mean 'wasm'?); backends are: auto, onnx, tensorflow, wasm, cpu");
    expect(err.fields).toEqual(['model.backend']);
  });
});
