import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { JobConfigError, parseJob } from '../../src/config/index.js';
import { defaultRuntimes, importRuntime, loadRunner, type RuntimeEntry } from '../../src/models/index.js';
import { defaultRegistries, resolveJob, type Registries } from '../../src/pipeline/index.js';
import { runJob } from '../../src/queue/index.js';
import { defaultFormats, readPartFile } from '../../src/sinks/index.js';
import type { TableCommit, TableFormat, TableRun } from '../../src/sinks/table-destination.js';
import { defaultSources, planRows, type ShardSpec, type Source, type SourceEntry, type SourceRow } from '../../src/sources/index.js';
import { defaultSinks, type Sink, type SinkEntry, type SinkWriter } from '../../src/storage/index.js';
import { maxAbsDiff, REDIS_URL, ROOT, SEED, testPrefix } from '../helpers/index.js';

const SEED_ONNX = join(SEED, 'seed_model.onnx');
/** The seed model's rows: [1, 28, 28] (NCHW, one channel). */
const ROW = [1, 28, 28];
const PER = 28 * 28;

/** Row `i` of a toy dataset: deterministic values in [-1, 1]. */
function toyRow(i: number): Float32Array {
  return Float32Array.from({ length: PER }, (_, k) => Math.sin(i * 7.1 + k * 0.013));
}

/** `toy://N`: N tensor rows made up on the spot, ids '0'..'N-1'. */
class ToySource implements Source {
  readonly type = 'toy';
  private readonly rows: number;

  constructor(readonly uri: string) {
    this.rows = Number(/^toy:\/\/(\d+)$/.exec(uri)?.[1] ?? NaN);
    if (!Number.isInteger(this.rows)) throw new Error(`source.uri: a toy source is toy://<rows>, not ${uri}`);
  }
  async rowShape(): Promise<number[]> {
    return ROW;
  }
  async check(): Promise<void> {}
  async count(): Promise<number> {
    return this.rows;
  }
  async *plan(shardSize: number): AsyncIterable<ShardSpec> {
    yield* planRows(this.rows, shardSize);
  }
  async *read(shard: ShardSpec): AsyncIterable<SourceRow> {
    for (let i = shard.start; i < shard.start + shard.count; i++) yield { id: String(i), kind: 'tensor', data: toyRow(i) };
  }
  async close(): Promise<void> {}
}

const toySource: SourceEntry = {
  describe: 'made-up tensor rows (toy://N)',
  scheme: 'toy',
  fields: [],
  open: async (spec) => new ToySource(spec.uri),
};

/** `mem://name`: files kept in a map, committed whole. */
class MemorySink implements Sink {
  readonly files = new Map<string, Uint8Array>();
  constructor(readonly uri: string) {}
  resolve(key: string): string {
    return `${this.uri}/${key}`;
  }
  async check(): Promise<void> {}
  async createWriter(key: string): Promise<SinkWriter> {
    const chunks: Uint8Array[] = [];
    return {
      write: async (chunk) => void chunks.push(chunk.slice()),
      commit: async () => {
        const data = Buffer.concat(chunks);
        this.files.set(key, new Uint8Array(data));
        return { uri: this.resolve(key), bytes: data.byteLength };
      },
      abort: async () => undefined,
    };
  }
  async put(key: string, data: Uint8Array | string): Promise<string> {
    this.files.set(key, typeof data === 'string' ? new TextEncoder().encode(data) : data.slice());
    return this.resolve(key);
  }
  async get(key: string): Promise<Uint8Array | null> {
    return this.files.get(key) ?? null;
  }
  async exists(key: string): Promise<boolean> {
    return this.files.has(key);
  }
  async list(prefix: string): Promise<string[]> {
    return [...this.files.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
  async cleanup(): Promise<void> {}
}

/**
 * `toymodel:<scale>` models: a runtime of the program's own, a module of plain JavaScript that the
 * pool threads import by the URL its entry names (test/fixtures/toy-runtime/toy-runtime.mjs).
 */
const toyRuntime: RuntimeEntry = {
  handles: (uri) => uri.startsWith('toymodel:'),
  backends: ['toy'],
  models: 'toy models',
  model: 'a toy model',
  module: { url: pathToFileURL(join(ROOT, 'test/fixtures/toy-runtime/toy-runtime.mjs')).href, export: 'toyRuntime' },
};

describe('registries handed to a run', () => {
  const { prefix, cleanup } = testPrefix();
  // one store per sink uri, shared by every process step that opens it (plan, shards, finalize)
  const stores = new Map<string, MemorySink>();
  const memSink: SinkEntry = {
    describe: 'mem://name',
    fields: [],
    open: async (spec) => {
      let sink = stores.get(spec.uri);
      if (!sink) stores.set(spec.uri, (sink = new MemorySink(spec.uri)));
      return sink;
    },
  };
  const registries: Registries = { ...defaultRegistries(), sources: defaultSources().with('toy', toySource), sinks: defaultSinks().with('mem', memSink) };
  const job = (source: Record<string, unknown>) =>
    parseJob({
      name: 'toy',
      source,
      model: { uri: SEED_ONNX },
      taps: [
        { layer: 'conv_16.0', at: 'input', as: 'pixels' },
        { layer: 'linear_class.0', at: 'input', as: 'hidden' },
      ],
      batchSize: 2,
      shardSize: 2,
      sink: { uri: 'mem://out' },
    });

  afterAll(cleanup);

  it('runs a job from a toy source into a toy sink through the queue and the pool threads', async () => {
    const rows = 5;
    const summary = await runJob(job({ uri: `toy://${rows}` }), { registries, settings: { redisUrl: REDIS_URL, prefix }, threads: 2 });
    expect(summary.status).toBe('committed');
    expect(summary.rows).toBe(rows);
    expect(summary.errorRows).toBe(0);
    expect(summary.shards).toEqual({ total: 3, done: 3, failed: 0, cancelled: 0 });

    const store = stores.get('mem://out')!;
    const under = (uri: string) => uri.slice('mem://out/'.length);
    expect(summary.output.files.map(under)).toEqual([0, 1, 2].map((i) => `toy/${summary.fingerprint}/${summary.runId}/part-0000${i}.arrow`));
    expect(store.files.has(`${under(summary.output.uri)}/_SUCCESS`)).toBe(true);
    const manifest = JSON.parse(Buffer.from(store.files.get(under(summary.output.manifest!))!).toString('utf8'));
    expect(manifest.source).toEqual({ uri: `toy://${rows}`, type: 'toy' });

    const ids: string[] = [];
    const pixels: Float32Array[] = [];
    const hidden: Float32Array[] = [];
    for (const file of summary.output.files) {
      const t = await readPartFile(store.files.get(under(file))!);
      for (let i = 0; i < t.numRows; i++) {
        ids.push(String(t.getChild('id')!.get(i)));
        pixels.push(Float32Array.from((t.getChild('pixels')!.get(i) as { toArray(): ArrayLike<number> }).toArray()));
        hidden.push(Float32Array.from((t.getChild('hidden')!.get(i) as { toArray(): ArrayLike<number> }).toArray()));
      }
    }
    expect(ids).toEqual(['0', '1', '2', '3', '4']);
    // a tap on the model's input gives the rows the toy source made, exactly
    pixels.forEach((p, i) => expect(maxAbsDiff(p, toyRow(i))).toBe(0));

    // the hidden features are what the model computes on those rows in this thread
    const resolved = await resolveJob(job({ uri: `toy://${rows}` }), { registries });
    const runner = await loadRunner({
      uri: SEED_ONNX,
      backend: 'onnx',
      taps: resolved.taps,
      inputShape: ROW,
      fingerprint: resolved.fingerprint,
      preprocess: null,
    });
    try {
      const data = new Float32Array(rows * PER);
      for (let i = 0; i < rows; i++) data.set(toyRow(i), i * PER);
      const out = await runner.run({ input: { dtype: 'float32', dims: [rows, ...ROW], data } });
      const expected = out.hidden!;
      expect(expected.shape).toEqual([hidden[0]!.length]);
      hidden.forEach((h, i) => expect(maxAbsDiff(h, expected.data.subarray(i * h.length, (i + 1) * h.length))).toBeLessThanOrEqual(1e-5));
    } finally {
      await runner.dispose();
    }
  });

  it('checks source types and sink schemes against the registries it is given', async () => {
    const typo = await resolveJob(job({ uri: 'toy://3', type: 'toys' }), { registries }).catch((e: unknown) => e);
    expect(typo).toBeInstanceOf(JobConfigError);
    expect((typo as JobConfigError).message).toBe(
      "source.type: unknown type 'toys' (did you mean 'toy'?); types are: toy, images, npy, arrow, parquet, jsonl, text",
    );
    expect((typo as JobConfigError).fields).toEqual(['source.type']);
    // the built-in registries know neither
    const builtin = await resolveJob(job({ uri: 'toy://3' })).catch((e: unknown) => e);
    expect((builtin as Error).message).toMatch(
      /^sink\.uri: unsupported scheme mem:\/\/ in mem:\/\/out; use a local directory or a file:\/\/ URL, or s3:\/\/bucket\/prefix$/,
    );
  });

  it('runs a model of a runtime the program adds, in the pool threads', async () => {
    const rows = 5;
    const withToy: Registries = { ...registries, runtimes: defaultRuntimes().with('toy', toyRuntime) };
    const toyJob = parseJob({
      name: 'toy-model',
      source: { uri: `toy://${rows}` },
      model: { uri: 'toymodel:3' },
      taps: [
        { layer: 'scaled', as: 'scaled' },
        { layer: 'scaled', reduce: 'mean', as: 'mean' },
      ],
      batchSize: 2,
      shardSize: 2,
      sink: { uri: 'mem://toy-model' },
    });
    const summary = await runJob(toyJob, { registries: withToy, settings: { redisUrl: REDIS_URL, prefix }, threads: 2 });
    expect(summary.status, summary.error ?? '').toBe('committed');
    expect(summary.rows).toBe(rows);
    expect(summary.errorRows).toBe(0);

    const store = stores.get('mem://toy-model')!;
    const under = (uri: string) => uri.slice('mem://toy-model/'.length);
    const manifest = JSON.parse(Buffer.from(store.files.get(under(summary.output.manifest!))!).toString('utf8'));
    // 'toy' is the backend the runner reports in a pool thread ('toy-main-thread' in this one)
    expect(manifest.model).toEqual({ uri: 'toymodel:3', format: 'toy', backend: 'auto', runtime: 'toy' });
    const ids: string[] = [];
    for (const file of summary.output.files) {
      const t = await readPartFile(store.files.get(under(file))!);
      for (let i = 0; i < t.numRows; i++) {
        const id = String(t.getChild('id')!.get(i));
        ids.push(id);
        const x = toyRow(Number(id));
        const scaled = Float32Array.from((t.getChild('scaled')!.get(i) as { toArray(): ArrayLike<number> }).toArray());
        expect(
          maxAbsDiff(
            scaled,
            Float32Array.from(x, (v) => v * 3),
          ),
        ).toBe(0);
        const mean = (t.getChild('mean')!.get(i) as { toArray(): ArrayLike<number> }).toArray();
        expect(mean.length).toBe(1);
        expect(mean[0]).toBeCloseTo(Float32Array.from(x, (v) => v * 3).reduce((a, v) => a + v, 0) / PER, 6);
      }
    }
    expect(ids).toEqual(['0', '1', '2', '3', '4']);
  });

  it('runs a job into a table destination the program adds: the table mirrors each committed run', async () => {
    // `memtable`: rows kept in a map by id; the runs' folders go to a mem:// sink beside it
    const tables = new Map<string, Map<string, number[]>>();
    const commits: TableRun[] = [];
    const memTable: TableFormat = {
      fields: ['table'],
      runsUri: (spec) => `mem://runs-of-${spec.table}`,
      check: async () => undefined,
      open: async (spec) => ({
        async commit(run): Promise<TableCommit> {
          commits.push(run);
          const rows = new Map<string, number[]>();
          for (const shard of run.shards) {
            for await (const b of shard.batches()) {
              for (let i = 0; i < b.numRows; i++) rows.set(String(b.getChild('id')!.get(i)), [...(b.getChild('hidden')!.get(i) as Iterable<number>)]);
            }
          }
          const before = tables.get(spec.table) ?? new Map<string, number[]>();
          const deleted = [...before.keys()].filter((id) => !rows.has(id)).length;
          const updated = [...rows.keys()].filter((id) => before.has(id)).length;
          tables.set(spec.table, rows);
          return {
            uri: spec.uri,
            table: spec.table,
            rows: rows.size,
            version: null,
            inserted: rows.size - updated,
            updated,
            deleted,
            unchanged: 0,
            indexes: [],
          };
        },
        close: async () => undefined,
      }),
    };
    const withTable: Registries = { ...registries, formats: defaultFormats().with('memtable', { ...defaultFormats().get('arrow'), table: memTable }) };
    const tableJob = (rows: number) =>
      parseJob({
        name: 'toy-table',
        source: { uri: `toy://${rows}` },
        model: { uri: SEED_ONNX },
        taps: [{ layer: 'linear_class.0', at: 'input', as: 'hidden' }],
        batchSize: 2,
        shardSize: 2,
        sink: { uri: 'mem://db', format: 'memtable', table: 'vectors' },
      });
    const first = await runJob(tableJob(5), { registries: withTable, settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    expect(first.status, first.error ?? '').toBe('committed');
    expect(first.output.uri).toBe(`mem://runs-of-vectors/toy-table/${first.fingerprint}/${first.runId}`);
    expect([...tables.get('vectors')!.keys()]).toEqual(['0', '1', '2', '3', '4']);
    expect(commits.map((c) => c.shards.map((s) => [s.index, s.rows]))).toEqual([
      [
        [0, 2],
        [1, 2],
        [2, 1],
      ],
    ]);
    // the table's rows are the part files' rows
    const store = stores.get('mem://runs-of-vectors')!;
    const under = (uri: string) => uri.slice('mem://runs-of-vectors/'.length);
    for (const file of first.output.files) {
      const t = await readPartFile(store.files.get(under(file))!, { name: file, formats: withTable.formats });
      for (let i = 0; i < t.numRows; i++) {
        const hidden = Float32Array.from(t.getChild('hidden')!.get(i) as Iterable<number>);
        expect(maxAbsDiff(hidden, tables.get('vectors')!.get(String(t.getChild('id')!.get(i)))!)).toBe(0);
      }
    }
    const manifest = JSON.parse(Buffer.from(store.files.get(under(first.output.manifest!))!).toString('utf8'));
    expect(manifest.table).toEqual({
      uri: 'mem://db',
      table: 'vectors',
      rows: 5,
      version: null,
      inserted: 5,
      updated: 0,
      deleted: 0,
      unchanged: 0,
      indexes: [],
    });

    // a smaller source: the table follows it
    const second = await runJob(tableJob(3), { registries: withTable, settings: { redisUrl: REDIS_URL, prefix }, threads: 1 });
    expect(second.status, second.error ?? '').toBe('committed');
    expect([...tables.get('vectors')!.keys()]).toEqual(['0', '1', '2']);
    const m2 = JSON.parse(Buffer.from(store.files.get(under(second.output.manifest!))!).toString('utf8'));
    expect(m2.table).toMatchObject({ rows: 3, inserted: 0, updated: 3, deleted: 2 });

    // a table field on a format without a table destination names the field and the formats that take it
    const err = await resolveJob(parseJob({ ...tableJob(3), sink: { uri: 'mem://db', format: 'arrow', table: 'vectors' } }), {
      registries: withTable,
    }).catch((e: unknown) => e);
    expect((err as JobConfigError).message).toBe('sink.table: only applies to format memtable or format lancedb, not arrow');
  });

  it('refuses, at plan time, a runtime whose entry names no module for the pool threads', async () => {
    const { module: _, ...noModule } = toyRuntime;
    const runtimes = defaultRuntimes().with('toy', {
      ...noModule,
      open: () => importRuntime(toyRuntime.module),
    } as RuntimeEntry);
    const err = await resolveJob(
      parseJob({ name: 'toy-model', source: { uri: 'toy://3' }, model: { uri: 'toymodel:3' }, taps: [{ layer: 'scaled' }], sink: { uri: 'mem://x' } }),
      { registries: { ...registries, runtimes } },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobConfigError);
    expect((err as JobConfigError).message).toBe(
      "model.uri: runtime 'toy' names no module for the pool threads to import (RuntimeEntry.module: { url, export })",
    );
    expect((err as JobConfigError).fields).toEqual(['model.uri']);
  });
});
