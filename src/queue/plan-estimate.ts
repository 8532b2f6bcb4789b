import type { ResolvedJob } from '../config/resolved.js';
import { findBaseRun } from '../pipeline/incremental.js';
import { defaultRegistries, type Registries } from '../pipeline/registries.js';
import { modelTapColumns } from '../models/registry.js';
import type { RunManifest } from '../sinks/manifest.js';
import type { Source, ShardSpec } from '../sources/types.js';
import { MANIFEST, runPrefix } from '../storage/layout.js';
import { createSink } from '../storage/registry.js';
import { createSource } from '../sources/registry.js';
import type { TapColumn, TapLayout } from '../types/features.js';
import { runRedisBytes } from './run-specs.js';
import { DEFAULTS } from '../config/defaults.js';
import { chunkRows, extraColumns } from '../pipeline/columns.js';
import type { ExtraType, ExtraValue } from '../types/columns.js';

export { REDIS_COSTS } from './run-specs.js';

/** Bytes of a ragged column's list offset per row (Arrow's 32-bit offsets). */
const LIST_OFFSET_BYTES = 4;

/** Rows read (and tokenized) to learn a source's tokens per row, chunks per document and column sizes, when no run of the fingerprint tells them. */
export const TOKEN_SAMPLE_ROWS = 1000;

/** Rows read for their ids alone (sources that derive ids from positions or columns: the rows may be large tensors or images). */
const ID_SAMPLE_ROWS = 64;

/** Bytes of a utf8 value's offset (Arrow's 32-bit offsets). */
const UTF8_OFFSET_BYTES = 4;

/** Shards the token sample is spread over, evenly across the dataset. */
const TOKEN_SAMPLE_SHARDS = 16;

/** One tap's share of the output. */
export interface TapEstimate {
  /** column name */
  as: string;
  /** per-row shape written ([null, D] for a ragged token column), null when neither the model nor a previous run tells it */
  shape: Array<number | null> | null;
  /** `layertap.layout` of the column, null when the shape is unknown */
  layout: TapLayout | null;
  /** where the shape comes from: 'model' (its layer list and shape inference) or 'run <id>'; null when unknown */
  shapeFrom: string | null;
  /**
   * feature bytes per row (float32: 4 per value, float16: 2); for a ragged column at the average
   * tokens per row, plus its list offset. null when the shape or the tokens per row are unknown
   */
  bytesPerRow: number | null;
  /** feature bytes of the whole run */
  bytes: number | null;
}

/** A column besides the taps: `id`, a carried source column, or a chunk row's `chunk`, `start`, `end`. */
export interface ColumnEstimate {
  name: string;
  type: ExtraType;
  /** bytes per written row (a utf8 column's: the sample's average, with its offset); null when nothing told it */
  bytesPerRow: number | null;
  /** bytes of the whole run */
  bytes: number | null;
}

/** How long a run takes with some number of worker processes. */
export interface DurationEstimate {
  workers: number;
  /** workers that have a shard to work on: never more than the shards */
  busy: number;
  seconds: number;
}

/** What `layertap plan` prints. */
export interface RunEstimate {
  name: string;
  fingerprint: string;
  source: string;
  rows: number;
  shards: number;
  shardSize: number;
  /** plan files the run writes under `_plan/` (file sources), 0 for sources whose rows follow from positions */
  planFiles: number;
  /**
   * rows the run writes: `rows`, except for a chunked text job that writes a row per chunk, whose
   * chunks per document come from a sample of the source (`rowsFrom`)
   */
  outputRows: number;
  /** where `outputRows` comes from: 'source' (a row each), or 'sample of N rows' (chunks per document) */
  rowsFrom: string;
  taps: TapEstimate[];
  /** feature bytes of every tap together, null when a tap's bytes are unknown */
  bytes: number | null;
  /** `id`, the carried columns and the chunk columns */
  columns: ColumnEstimate[];
  /** taps and columns together (Arrow framing adds a little), null when any of them is unknown */
  totalBytes: number | null;
  /** where the tap shapes come from: 'model', 'run <id>', both joined by 'and', or 'unknown' */
  shapesFrom: string;
  /** jobs with a ragged token column: the average real tokens per row its bytes are counted at */
  tokensPerRow: number | null;
  /** 'run <id>' (its manifest's token count), or 'sample of N rows' (the source's rows tokenized) */
  tokensFrom: string | null;
  redis: {
    /** bytes the run takes right after enqueue */
    atEnqueue: number;
    /** most the run takes while it goes: results of finished shards are kept in its parent job */
    peak: number;
  };
  /** rows per second of one worker process, and where the figure comes from ('--rows-per-sec' or a run id) */
  rowsPerSec: number | null;
  rowsPerSecFrom: string | null;
  /**
   * estimated seconds per number of worker processes: linear in the workers that have a shard
   * (never more than the shards), and never less than the largest shard takes one worker
   */
  duration: DurationEstimate[];
}

/** Options of {@link estimateRun}. */
export interface EstimateOptions {
  /** @defaultValue the built-ins */
  registries?: Registries;
  /** throughput of one worker; @defaultValue that of the newest committed run of the same fingerprint */
  rowsPerSec?: number;
  /** worker counts to estimate the duration for. @defaultValue [1, 2, 4, 8, 16, 32, 64] */
  workers?: number[];
  /** @defaultValue DEFAULTS.run.window */
  window?: number;
}

/** A column's shape and where it was learned. */
interface KnownColumn extends TapColumn {
  from: string;
}

/**
 * Sizes a run without queueing it and without touching Redis: streams the source's plan (rows,
 * shards); takes each tap's column from the model (its layer list and shape inference, pooled as
 * the runners pool), else from the newest committed run of the same fingerprint; counts a ragged
 * token column at the tokens per row of that run, else of a sample of the source tokenized;
 * takes throughput from that run unless given.
 */
export async function estimateRun(job: ResolvedJob, opts: EstimateOptions = {}): Promise<RunEstimate> {
  const registries = opts.registries ?? defaultRegistries();
  const fromModel = await modelTapColumns(job.model.uri, job.taps, job.text !== undefined, registries.runtimes).catch(() => job.taps.map(() => null));
  const sink = await createSink(job.sink, registries.sinks);
  const previous = await findBaseRun(job, sink);
  const bytes = previous ? await sink.get(`${runPrefix(job.name, job.fingerprint, previous.runId)}/${MANIFEST}`) : null;
  const manifest = bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<RunManifest>) : null;
  const fromRun = `run ${previous?.runId ?? ''}`;
  const columns = job.taps.map((t, i): KnownColumn | null => {
    const model = fromModel[i];
    if (model && model.shape.slice(model.layout === 'tokens' ? 1 : 0).every((d) => d !== null)) return { ...model, from: 'model' };
    const run = manifest?.taps?.find((m) => m.as === t.as);
    return run?.shape && run.layout ? { shape: run.shape, layout: run.layout, from: fromRun } : model ? { ...model, from: 'model' } : null;
  });

  const ragged = columns.some((c) => c?.layout === 'tokens');
  const runTokens = ragged && manifest ? tokensPerRow(manifest) : null;
  const source = await createSource(job.source, registries.sources);
  let plan: PlannedSource;
  let sampled: RowSample | null = null;
  try {
    plan = await planSource(source, job.shardSize);
    // text rows and carried columns are cheap to read: sample them for tokens, chunks and column sizes;
    // otherwise a few rows for the ids, when the plan does not name them (file sources do)
    if (job.text !== undefined || (job.carry ?? []).length > 0) sampled = await sampleRows(source, plan.spread, job, TOKEN_SAMPLE_ROWS);
    else if (!plan.spread.some((s) => s.ids !== undefined)) sampled = await sampleRows(source, plan.spread.slice(0, 1), job, ID_SAMPLE_ROWS);
  } finally {
    await source.close();
  }
  const sampledTokens = sampled?.tokensPerRow ?? null;
  const tokens = runTokens ?? sampledTokens;
  const { rows, shards, largest, ids } = plan;
  const chunked = chunkRows(job) && sampled !== null && sampled.rows > 0;
  const outputRows = chunked ? Math.round(rows * sampled!.outRowsPerRow) : rows;

  const taps = job.taps.map((t, i): TapEstimate => {
    const column = columns[i] ?? null;
    const bytesPerRow = column ? columnBytesPerRow(column, t.dtype, tokens) : null;
    return {
      as: t.as,
      shape: column?.shape ?? null,
      layout: column?.layout ?? null,
      shapeFrom: column?.from ?? null,
      bytesPerRow,
      bytes: bytesPerRow === null ? null : bytesPerRow * outputRows,
    };
  });
  const idBytes = idBytesPerRow(plan.spread, sampled);
  const others: ColumnEstimate[] = [
    { name: 'id', type: 'utf8' as const, bytesPerRow: idBytes, bytes: null },
    ...extraColumns(job).map((c): ColumnEstimate => ({
      name: c.name,
      type: c.type,
      bytesPerRow: sampled?.columnBytes.get(c.name) ?? fixedBytes(c.type),
      bytes: null,
    })),
  ].map((c) => ({ ...c, bytes: c.bytesPerRow === null ? null : c.bytesPerRow * outputRows }));
  const featureBytes = taps.every((t) => t.bytes !== null) ? taps.reduce((a, t) => a + (t.bytes ?? 0), 0) : null;
  const allKnown = featureBytes !== null && others.every((c) => c.bytes !== null);
  const froms = [...new Set(columns.map((c) => c?.from ?? null))];
  let rowsPerSec = opts.rowsPerSec ?? null;
  let rowsPerSecFrom: string | null = rowsPerSec !== null ? '--rows-per-sec' : null;
  if (rowsPerSec === null && manifest?.rows && manifest.seconds && manifest.seconds > 0) {
    rowsPerSec = manifest.rows / manifest.seconds;
    rowsPerSecFrom = fromRun;
  }
  const window = Math.min(opts.window ?? DEFAULTS.run.window, shards);
  const specBytes = JSON.stringify(job).length + (previous ? JSON.stringify(previous).length : 0);
  const { atEnqueue, peak } = runRedisBytes(shards, window, specBytes);
  return {
    name: job.name,
    fingerprint: job.fingerprint,
    source: job.source.uri,
    rows,
    shards,
    shardSize: job.shardSize,
    planFiles: ids ? Math.ceil(shards / 64) : 0,
    outputRows,
    rowsFrom: chunked ? `sample of ${sampled!.rows} rows` : 'source',
    taps,
    bytes: featureBytes,
    columns: others,
    totalBytes: allKnown ? featureBytes + others.reduce((a, c) => a + (c.bytes ?? 0), 0) : null,
    shapesFrom: froms.includes(null) ? 'unknown' : froms.join(' and '),
    tokensPerRow: tokens,
    tokensFrom: runTokens !== null ? fromRun : sampledTokens !== null ? `sample of ${sampled!.rows} rows` : null,
    redis: { atEnqueue, peak },
    rowsPerSec,
    rowsPerSecFrom,
    duration: rowsPerSec ? (opts.workers ?? DEFAULTS.plan.workerCounts).map((w) => duration(w, rows, shards, largest, rowsPerSec)) : [],
  };
}

/**
 * Seconds for `rows` in `shards` with `workers` processes of `rowsPerSec` each: a shard is one
 * worker's, so workers past the shard count idle, and the run takes at least its largest shard.
 */
export function duration(workers: number, rows: number, shards: number, largest: number, rowsPerSec: number): DurationEstimate {
  const busy = Math.min(workers, shards);
  const seconds = busy === 0 ? 0 : Math.max(rows / (rowsPerSec * busy), largest / rowsPerSec);
  return { workers, busy, seconds };
}

/** Feature bytes of one row of `column`; a ragged one's at `tokens` per row, null when that is unknown. */
function columnBytesPerRow(column: TapColumn, dtype: 'float32' | 'float16', tokens: number | null): number | null {
  const value = dtype === 'float16' ? 2 : 4;
  const ragged = column.layout === 'tokens';
  const dims = ragged ? column.shape.slice(1) : column.shape;
  if (dims.some((d) => d === null) || (ragged && tokens === null)) return null;
  const values = (dims as number[]).reduce((a, b) => a * b, 1);
  return ragged ? (tokens as number) * values * value + LIST_OFFSET_BYTES : values * value;
}

/** Real tokens per embedded row of a run, from its manifest (carried rows were not tokenized); null when it does not say. */
function tokensPerRow(m: Partial<RunManifest>): number | null {
  // the run's totals; manifests written before they existed (or past the inline shard list) by their shards
  if (typeof m.tokens === 'number' && typeof m.tokenizedRows === 'number') return m.tokenizedRows > 0 ? m.tokens / m.tokenizedRows : null;
  let tokens = 0;
  let rows = 0;
  for (const s of (m.shards ?? []) as Array<{ rows: number; tokens?: number; carried?: number }>) {
    if (typeof s.tokens !== 'number') continue;
    tokens += s.tokens;
    rows += s.rows - (s.carried ?? 0);
  }
  return rows > 0 ? tokens / rows : null;
}

/** What the source's plan says of the run. */
interface PlannedSource {
  rows: number;
  shards: number;
  /** rows of the largest shard */
  largest: number;
  /** the plan names its rows' ids (file sources) */
  ids: boolean;
  /** at most 2 x TOKEN_SAMPLE_SHARDS shards, spread evenly over the plan */
  spread: ShardSpec[];
}

/** Streams a source's plan, keeping a bounded set of shards spread over it (every stride-th, the stride doubling as they pile up). */
async function planSource(source: Source, shardSize: number): Promise<PlannedSource> {
  let rows = 0;
  let shards = 0;
  let largest = 0;
  let ids = false;
  let spread: ShardSpec[] = [];
  let stride = 1;
  for await (const s of source.plan(shardSize)) {
    rows += s.count;
    shards++;
    largest = Math.max(largest, s.count);
    if (s.ids) ids = true;
    if ((shards - 1) % stride === 0) {
      spread.push(s);
      if (spread.length > 2 * TOKEN_SAMPLE_SHARDS) {
        spread = spread.filter((_, i) => i % 2 === 0);
        stride *= 2;
      }
    }
  }
  return { rows, shards, largest, ids, spread };
}

/** What a sample of the source's rows says of the rows a run writes. */
interface RowSample {
  /** rows read (error rows left out) */
  rows: number;
  /** real tokens per written row (special tokens included), as the token columns hold them; null for a source without text */
  tokensPerRow: number | null;
  /** rows written per source row: chunks per document for a job that writes a row per chunk, else 1 */
  outRowsPerRow: number;
  /** id bytes per written row (utf8, with its offset; a document's id is on each of its chunk rows) */
  idBytes: number;
  /** bytes per written row of each carried or chunk column */
  columnBytes: Map<string, number>;
}

/** Bytes of a column of a fixed-width type per row; null for utf8, whose values differ. */
function fixedBytes(type: ExtraType): number | null {
  switch (type) {
    case 'utf8':
      return null;
    case 'int32':
      return 4;
    case 'int64':
    case 'float64':
      return 8;
    case 'bool':
      // a bit per row, counted as a byte in eighths
      return 1 / 8;
  }
}

/** Bytes a value takes in its column: utf8's, with its offset; a fixed width otherwise. */
function valueBytes(type: ExtraType, v: ExtraValue): number {
  if (type !== 'utf8') return fixedBytes(type)!;
  return (typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : 0) + UTF8_OFFSET_BYTES;
}

/** Average id bytes per written row: the sample's, else the plan's ids (file sources name their rows); null when neither tells. */
function idBytesPerRow(spread: ShardSpec[], sample: RowSample | null): number | null {
  if (sample !== null && sample.rows > 0) return sample.idBytes;
  const known = spread.flatMap((s) => s.ids ?? []).slice(0, TOKEN_SAMPLE_ROWS);
  return known.length > 0 ? known.reduce((a, id) => a + Buffer.byteLength(id, 'utf8'), 0) / known.length + UTF8_OFFSET_BYTES : null;
}

/**
 * Up to `limit` rows, the first rows of up to TOKEN_SAMPLE_SHARDS of `shards`:
 * their ids and carried values, and for a text job their tokens (as the run tokenizes them) and,
 * when it writes a row per chunk, their chunks (as the run cuts them).
 */
async function sampleRows(source: Source, shards: ShardSpec[], job: ResolvedJob, limit: number): Promise<RowSample> {
  const picked = shards.filter((_, i) => i % Math.ceil(shards.length / TOKEN_SAMPLE_SHARDS) === 0);
  const perShard = Math.ceil(limit / Math.max(1, picked.length));
  const rows: Array<{ id: string; text: string | null; carry: ExtraValue[] }> = [];
  for (const shard of picked) {
    let read = 0;
    for await (const row of source.read(shard)) {
      if (row.kind !== 'error') rows.push({ id: row.id, text: row.kind === 'text' ? row.text : null, carry: row.carry ?? [] });
      if (++read >= perShard || rows.length >= limit) break;
    }
    if (rows.length >= limit) break;
  }
  const carried = job.carry ?? [];
  const columnBytes = new Map<string, number>();
  const add = (name: string, bytes: number): void => void columnBytes.set(name, (columnBytes.get(name) ?? 0) + bytes);
  const texts = rows.flatMap((r) => (r.text === null ? [] : [r.text]));
  let tokensPerRow: number | null = null;
  let outRows = rows.length;
  if (job.text !== undefined && texts.length > 0) {
    // the tokenizer library is loaded by text jobs only
    const { TextTokenizer } = await import('../preprocess/tokenize.js');
    const tokenizer = new TextTokenizer(job.text);
    if (chunkRows(job)) {
      const { TextChunker } = await import('../preprocess/chunk.js');
      const chunker = new TextChunker(tokenizer, job.text.prefix, job.text.chunk!);
      let tokens = 0;
      outRows = 0;
      for (const r of rows) {
        const chunks = r.text === null ? [] : chunker.split(r.text);
        outRows += chunks.length;
        tokens += chunks.reduce((a, c) => a + c.tokens, 0);
        for (const c of chunks) {
          add('id', valueBytes('utf8', r.id));
          carried.forEach((col, k) => add(col.name, col.input ? valueBytes('utf8', r.text!.slice(c.from, c.to)) : valueBytes(col.type, r.carry[k] ?? null)));
          add('chunk', 4);
          add('start', 4);
          add('end', 4);
        }
      }
      tokensPerRow = outRows > 0 ? tokens / outRows : null;
    } else {
      const batch = tokenizer.encode(texts);
      tokensPerRow = batch.ids.reduce((a, ids) => a + ids.length, 0) / texts.length;
    }
  }
  if (!chunkRows(job) || texts.length === 0) {
    for (const r of rows) {
      add('id', valueBytes('utf8', r.id));
      carried.forEach((col, k) => add(col.name, col.input && r.text !== null ? valueBytes('utf8', r.text) : valueBytes(col.type, r.carry[k] ?? null)));
    }
  }
  for (const [name, bytes] of columnBytes) columnBytes.set(name, outRows > 0 ? bytes / outRows : 0);
  return {
    rows: rows.length,
    tokensPerRow,
    outRowsPerRow: rows.length > 0 ? outRows / rows.length : 1,
    idBytes: columnBytes.get('id') ?? 0,
    columnBytes,
  };
}
