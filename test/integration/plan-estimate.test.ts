import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataType, type Data } from 'apache-arrow';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob, type JobInput } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { estimateRun, TOKEN_SAMPLE_ROWS, type RunEstimate } from '../../src/queue/plan-estimate.js';
import { runJob } from '../../src/queue/index.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { writeNpy } from '../../src/sources/npy.js';
import { REDIS_URL, SEED, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';

const SEED_ONNX = join(SEED, 'seed_model.onnx');
const TEXT = fileURLToPath(new URL('../fixtures/text-model/', import.meta.url));
const IMAGES = 6;
const TENSOR_ROWS = 10;
const TEXT_ROWS = 1200;

/** Bytes of a column's values and list offsets, children included (the padding of Arrow's buffers to 8 bytes aside). */
function dataBytes(d: Data): number {
  const values = d.children.length === 0 ? d.length * (d.values as Float32Array | Uint16Array).BYTES_PER_ELEMENT : 0;
  const offsets = d.valueOffsets ? (d.length + 1) * (d.valueOffsets as Int32Array).BYTES_PER_ELEMENT : 0;
  return values + offsets + d.children.reduce((a, c) => a + dataBytes(c), 0);
}

interface Written {
  /** per column: bytes of its buffers over every part file, its field metadata */
  columns: Map<string, { bytes: number; shape: unknown; layout: string | undefined }>;
  /** per ragged column, its items (tokens) over every part file */
  items: Map<string, number>;
  /** the id and the columns besides the taps (carried, chunk): bytes of their buffers over every part file */
  others: Map<string, number>;
  /** rows over every part file */
  rows: number;
}

/** What the part files of a run hold, per tap column. */
async function written(files: string[]): Promise<Written> {
  const columns = new Map<string, { bytes: number; shape: unknown; layout: string | undefined }>();
  const items = new Map<string, number>();
  const others = new Map<string, number>();
  let rows = 0;
  for (const file of files) {
    const table = await readPartFile(file);
    rows += table.numRows;
    for (const field of table.schema.fields.filter((f, i) => i === 0 || f.metadata.has('layertap.column'))) {
      // utf8: each value's bytes and its 32-bit offset; a fixed width otherwise
      const values = [...table.getChild(field.name)!] as unknown[];
      const bytes = DataType.isUtf8(field.type)
        ? values.reduce<number>((a, v) => a + (typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : 0) + 4, 0)
        : values.length * ((field.type as { bitWidth: number }).bitWidth / 8);
      others.set(field.name, (others.get(field.name) ?? 0) + bytes);
    }
    // the tap columns: after the id, and not the carried text (layertap.column)
    for (const field of table.schema.fields.slice(1).filter((f) => !f.metadata.has('layertap.column'))) {
      const data = table.getChild(field.name)!.data;
      const prev = columns.get(field.name);
      columns.set(field.name, {
        bytes: (prev?.bytes ?? 0) + data.reduce((a, d) => a + dataBytes(d), 0),
        shape: JSON.parse(field.metadata.get('layertap.shape')!),
        layout: field.metadata.get('layertap.layout'),
      });
      if (field.metadata.get('layertap.layout') === 'tokens') {
        items.set(field.name, (items.get(field.name) ?? 0) + data.reduce((a, d) => a + d.children[0]!.length, 0));
      }
    }
  }
  return { columns, items, others, rows };
}

/** Sentences of 1 to 40 words from the fixture's, so that rows run from a few tokens to past maxLength. */
function sentences(words: string[], n: number): Array<{ id: string; text: string }> {
  return Array.from({ length: n }, (_, i) => {
    const len = ((i * 7) % 40) + 1;
    return { id: `r${i}`, text: Array.from({ length: len }, (_, k) => words[(i * 3 + k) % words.length]).join(' ') };
  });
}

describe('layertap plan estimates what a run writes', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const figures: string[] = [];

  beforeAll(async () => {
    tmp = await tempDir();
    await mkdir(join(tmp.dir, 'images'));
    for (let i = 0; i < IMAGES; i++) {
      const raw = Buffer.alloc(28 * 28);
      for (let p = 0; p < raw.length; p++) raw[p] = (p * (i + 3) + i * 40) % 256;
      await writeFile(
        join(tmp.dir, 'images', `img-${i}.png`),
        await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
          .png()
          .toBuffer(),
      );
    }
    const data = new Float32Array(TENSOR_ROWS * 28 * 28).map((_, k) => Math.sin(k * 0.37) * 0.5 + 0.5);
    await writeNpy(join(tmp.dir, 'rows.npy'), data, [TENSOR_ROWS, 1, 28, 28]);
    const fixture = (await readFile(join(TEXT, 'sentences.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { text: string }).text);
    const words = fixture.join(' ').split(/\s+/);
    await writeFile(
      join(tmp.dir, 'text.jsonl'),
      sentences(words, TEXT_ROWS)
        .map((r) => JSON.stringify(r) + '\n')
        .join(''),
    );
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
    console.log(`plan estimate vs part files (bytes):\n${figures.join('\n')}`);
  });

  const cases: Array<{ name: string; job: (dir: string) => JobInput }> = [
    {
      name: 'images-onnx',
      job: (dir) => ({
        name: 'images-onnx',
        source: { uri: join(dir, 'images') },
        model: { uri: SEED_ONNX },
        taps: [
          { layer: 'conv_16.0', at: 'input', as: 'pixels' },
          { layer: 'conv_16.2', as: 'maps' },
          { layer: 'conv_32.1', reduce: 'mean', as: 'pooled' },
          { layer: 'conv_32.0', reduce: 'max', axes: [3], as: 'rows_max' },
          { layer: 'linear_1.1', dtype: 'float16' },
          { layer: 'linear_class.0', at: 'input', as: 'hidden' },
        ],
        batchSize: 4,
        shardSize: 4,
        sink: { uri: join(dir, 'out') },
      }),
    },
    {
      name: 'images-tfjs',
      job: (dir) => ({
        name: 'images-tfjs',
        source: { uri: join(dir, 'images') },
        model: { uri: SEED_MODEL },
        taps: [
          { layer: 'conv_16.2', as: 'maps' },
          { layer: 'conv_32.1', reduce: 'mean', as: 'pooled' },
          { layer: 'conv_16.1', reduce: 'max', axes: [1], as: 'cols_max' },
          { layer: 'linear_1.1', dtype: 'float16' },
          { layer: 'linear_class.0', at: 'input', as: 'hidden' },
        ],
        batchSize: 4,
        shardSize: 4,
        sink: { uri: join(dir, 'out') },
      }),
    },
    {
      name: 'tensor-onnx',
      job: (dir) => ({
        name: 'tensor-onnx',
        source: { uri: join(dir, 'rows.npy') },
        model: { uri: SEED_ONNX },
        taps: [{ layer: 'conv_32.2', as: 'gap' }, { layer: 'linear_1.1' }, { layer: 'linear_class.1', dtype: 'float16' }],
        batchSize: 4,
        shardSize: 6,
        sink: { uri: join(dir, 'out') },
      }),
    },
    {
      name: 'text',
      job: (dir) => ({
        name: 'text',
        source: { uri: join(dir, 'text.jsonl'), idColumn: 'id', inputColumn: 'text' },
        model: { uri: join(TEXT, 'model.onnx') },
        taps: [
          { layer: 'encoder.layer.3', reduce: 'mean', as: 'mean' },
          { layer: 'encoder.layer.1', reduce: 'cls', dtype: 'float16', as: 'cls' },
          { layer: 'pooler', as: 'pooler' },
          { layer: 'encoder.layer.3', reduce: 'none', as: 'tokens' },
          { layer: 'embeddings', reduce: 'none', dtype: 'float16', as: 'embedded' },
        ],
        batchSize: 16,
        shardSize: 100,
        sink: { uri: join(dir, 'out') },
      }),
    },
    {
      name: 'text-chunks',
      job: (dir) => ({
        name: 'text-chunks',
        source: { uri: join(dir, 'text.jsonl'), idColumn: 'id', inputColumn: 'text' },
        model: { uri: join(TEXT, 'model.onnx') },
        preprocess: { chunk: { tokens: 16, overlap: 4 } },
        taps: [{ layer: 'encoder.layer.3', reduce: 'mean', as: 'mean' }],
        batchSize: 16,
        shardSize: 300,
        sink: { uri: join(dir, 'out') },
      }),
    },
  ];

  it.each(cases)(
    '$name: each tap gets the shape and layout the part files and manifest record, and its bytes within 2x',
    async ({ name, job: make }) => {
      const job = parseJob(make(tmp.dir));
      const e = await estimateRun(await resolveJob(job));
      const summary = await runJob(job, { settings: { redisUrl: REDIS_URL, prefix }, threads: 2 });
      expect(summary.status).toBe('committed');
      const parts = await written(summary.output.files);
      if (name === 'text-chunks') {
        // rows are documents; a row per chunk is written, counted from a sample of 1000 of the 1200 documents
        expect(e.rowsFrom).toBe(`sample of ${TOKEN_SAMPLE_ROWS} rows`);
        expect(parts.rows).toBeGreaterThan(2 * TEXT_ROWS);
        expect(e.outputRows / parts.rows).toBeGreaterThan(0.9);
        expect(e.outputRows / parts.rows).toBeLessThan(1.1);
      } else {
        expect(e.rows).toBe(summary.rows);
        expect(e.outputRows).toBe(e.rows);
        expect(parts.rows).toBe(e.rows);
      }
      const manifest = JSON.parse(await readFile(summary.output.manifest!, 'utf8')) as { taps: Array<{ as: string; shape: unknown; layout: unknown }> };
      expect(e.shapesFrom).toBe('model');

      const lines: string[] = [];
      for (const tap of e.taps) {
        const part = parts.columns.get(tap.as)!;
        // the model tells every shape: the estimate's is the one written, in the part files and the manifest alike
        expect(tap.shape, tap.as).toEqual(part.shape);
        expect(tap.layout, tap.as).toBe(part.layout);
        expect(
          manifest.taps.find((t) => t.as === tap.as),
          tap.as,
        ).toMatchObject({ shape: part.shape, layout: part.layout });
        const ratio = tap.bytes! / part.bytes;
        if (tap.layout === 'tokens') {
          expect(ratio, tap.as).toBeGreaterThanOrEqual(0.5);
          expect(ratio, tap.as).toBeLessThanOrEqual(2);
        } else if (name === 'text-chunks') {
          // the written rows are estimated (chunks per document from the sample)
          expect(ratio, tap.as).toBeGreaterThan(0.9);
          expect(ratio, tap.as).toBeLessThan(1.1);
        } else {
          expect(tap.bytes, tap.as).toBe(part.bytes);
        }
        lines.push(
          `  ${name} ${tap.as} ${JSON.stringify(tap.shape)} ${tap.layout}: estimate ${Math.round(tap.bytes!)} B, written ${part.bytes} B (${ratio.toFixed(3)}x)`,
        );
      }
      const total = [...parts.columns.values()].reduce((a, c) => a + c.bytes, 0);
      lines.push(`  ${name} all taps: estimate ${Math.round(e.bytes!)} B, written ${total} B (${(e.bytes! / total).toFixed(3)}x)`);
      // the id and the carried and chunk columns: the ones written, each estimated within 10% (utf8 from a sample; exact ids and fixed widths when every row is sampled)
      expect(e.columns.map((c) => c.name).sort()).toEqual([...parts.others.keys()].sort());
      for (const c of e.columns) {
        const ratio = c.bytes! / parts.others.get(c.name)!;
        expect(ratio, c.name).toBeGreaterThan(0.9);
        expect(ratio, c.name).toBeLessThan(1.1);
        lines.push(`  ${name} ${c.name} (${c.type}): estimate ${Math.round(c.bytes!)} B, written ${parts.others.get(c.name)} B (${ratio.toFixed(3)}x)`);
      }
      const everything = total + [...parts.others.values()].reduce((a, b) => a + b, 0);
      lines.push(`  ${name} everything: estimate ${Math.round(e.totalBytes!)} B, written ${everything} B (${(e.totalBytes! / everything).toFixed(3)}x)`);
      figures.push(...lines);

      if (name === 'text') {
        expect(e.taps.map((t) => t.layout)).toEqual(['pooled', 'pooled', 'pooled', 'tokens', 'tokens']);
        expect(e.tokensFrom).toBe(`sample of ${TOKEN_SAMPLE_ROWS} rows`);
        // once a run of the fingerprint is committed, its token count is the one taken: the tokens written
        const again = await estimateRun(await resolveJob(job));
        expect(again.tokensFrom).toBe(`run ${summary.runId}`);
        expect(again.tokensPerRow! * summary.rows).toBeCloseTo(parts.items.get('tokens')!, 6);
        expect(again.tokensPerRow! * summary.rows).toBeCloseTo(parts.items.get('embedded')!, 6);
        const tokens = again.taps.find((t) => t.as === 'tokens')!;
        figures.push(
          `  text tokens at the run's ${again.tokensPerRow!.toFixed(2)} tokens/row: estimate ${Math.round(tokens.bytes!)} B, written ${parts.columns.get('tokens')!.bytes} B`,
        );
      }
    },
    120_000,
  );

  it('counts no more workers than shards, and no run shorter than its largest shard', async () => {
    const job = await resolveJob(parseJob(cases[2]!.job(tmp.dir)));
    // 10 rows in shards of 6 and 4
    const e: RunEstimate = await estimateRun(job, { rowsPerSec: 2, workers: [1, 2, 64] });
    expect(e.shards).toBe(2);
    expect(e.duration).toEqual([
      { workers: 1, busy: 1, seconds: 5 },
      { workers: 2, busy: 2, seconds: 3 },
      { workers: 64, busy: 2, seconds: 3 },
    ]);
  });
});
