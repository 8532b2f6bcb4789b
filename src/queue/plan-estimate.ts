import type { ResolvedJob, ResolvedTap } from '../config/resolved.js';
import { findBaseRun } from '../pipeline/incremental.js';
import { defaultRegistries, type Registries } from '../pipeline/registries.js';
import { listLayers } from '../models/registry.js';
import type { LayerInfo } from '../models/types.js';
import { MANIFEST, runPrefix } from '../storage/layout.js';
import { createSink } from '../storage/registry.js';
import { createSource } from '../sources/registry.js';
import { RANGE_BYTES } from './run-specs.js';
import { DEFAULT_WINDOW } from './shard-jobs.js';

/**
 * Redis bytes measured on Redis 7 (docs/scale.md): a queued shard job with its share of the
 * queue's lists and events, the run's record, parent job and dedup key, and the result a finished
 * shard leaves in its parent job until the run job is removed.
 */
export const REDIS_COSTS = { shardJob: 1400, run: 4000, resultPerShard: 450 } as const;

/** One tap's share of the output. */
export interface TapEstimate {
  /** column name */
  as: string;
  /** per-row shape written, null when neither a previous run nor the model's layer list tells it */
  shape: number[] | null;
  /** feature bytes per row (float32: 4 per value, float16: 2), null when the shape is unknown */
  bytesPerRow: number | null;
  /** feature bytes of the whole run */
  bytes: number | null;
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
  taps: TapEstimate[];
  /** feature bytes of every tap together, null when a tap's shape is unknown (ids and Arrow framing add a little) */
  bytes: number | null;
  /** where the tap shapes come from: the newest committed run of this fingerprint, or the model's layer list */
  shapesFrom: string;
  redis: {
    /** bytes the run takes right after enqueue */
    atEnqueue: number;
    /** most the run takes while it goes: results of finished shards are kept in its parent job */
    peak: number;
  };
  /** rows per second of one worker process, and where the figure comes from ('--rows-per-sec' or a run id) */
  rowsPerSec: number | null;
  rowsPerSecFrom: string | null;
  /** estimated seconds per number of worker processes, assuming they scale linearly */
  duration: Array<{ workers: number; seconds: number }>;
}

/** Options of {@link estimateRun}. */
export interface EstimateOptions {
  /** @defaultValue the built-ins */
  registries?: Registries;
  /** throughput of one worker; @defaultValue that of the newest committed run of the same fingerprint */
  rowsPerSec?: number;
  /** worker counts to estimate the duration for. @defaultValue [1, 2, 4, 8, 16, 32, 64] */
  workers?: number[];
  /** @defaultValue {@link DEFAULT_WINDOW} */
  window?: number;
}

/**
 * Sizes a run without queueing it and without touching Redis: streams the source's plan (rows,
 * shards), takes tap shapes and throughput from the newest committed run of the same fingerprint
 * when there is one, else shapes from the model's layer list.
 */
export async function estimateRun(job: ResolvedJob, opts: EstimateOptions = {}): Promise<RunEstimate> {
  const registries = opts.registries ?? defaultRegistries();
  const source = await createSource(job.source, registries.sources);
  let rows = 0;
  let shards = 0;
  let ids = false;
  try {
    for await (const s of source.plan(job.shardSize)) {
      rows += s.count;
      shards++;
      if (s.ids) ids = true;
    }
  } finally {
    await source.close();
  }
  const sink = await createSink(job.sink, registries.sinks);
  const previous = await findBaseRun(job, sink);
  let shapes: Record<string, number[]> = previous?.shapes ?? {};
  let shapesFrom = previous ? `run ${previous.runId}` : 'model';
  let rowsPerSec = opts.rowsPerSec ?? null;
  let rowsPerSecFrom: string | null = rowsPerSec !== null ? '--rows-per-sec' : null;
  if (previous && rowsPerSec === null) {
    const bytes = await sink.get(`${runPrefix(job.name, job.fingerprint, previous.runId)}/${MANIFEST}`);
    const m = bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as { rows?: number; seconds?: number }) : {};
    if (m.rows && m.seconds && m.seconds > 0) {
      rowsPerSec = m.rows / m.seconds;
      rowsPerSecFrom = `run ${previous.runId}`;
    }
  }
  if (!previous) {
    const layers = await listLayers(job.model.uri, {}, registries.runtimes).catch(() => [] as LayerInfo[]);
    shapes = Object.fromEntries(
      job.taps.flatMap((t) => {
        const shape = modelShape(t, layers, job.model.format);
        return shape ? [[t.as, shape]] : [];
      }),
    );
    if (layers.length === 0) shapesFrom = 'unknown';
  }
  const taps = job.taps.map((t): TapEstimate => {
    const shape = shapes[t.as] ?? null;
    const bytesPerRow = shape ? shape.reduce((a, b) => a * b, 1) * (t.dtype === 'float16' ? 2 : 4) : null;
    return { as: t.as, shape, bytesPerRow, bytes: bytesPerRow === null ? null : bytesPerRow * rows };
  });
  const window = Math.min(opts.window ?? DEFAULT_WINDOW, shards);
  const specBytes = JSON.stringify(job).length + (previous ? JSON.stringify(previous).length : 0);
  const atEnqueue = REDIS_COSTS.run + specBytes + shards * RANGE_BYTES + window * REDIS_COSTS.shardJob;
  return {
    name: job.name,
    fingerprint: job.fingerprint,
    source: job.source.uri,
    rows,
    shards,
    shardSize: job.shardSize,
    planFiles: ids ? Math.ceil(shards / 64) : 0,
    taps,
    bytes: taps.every((t) => t.bytes !== null) ? taps.reduce((a, t) => a + (t.bytes ?? 0), 0) : null,
    shapesFrom,
    redis: { atEnqueue, peak: atEnqueue + shards * REDIS_COSTS.resultPerShard },
    rowsPerSec,
    rowsPerSecFrom,
    duration: rowsPerSec ? (opts.workers ?? [1, 2, 4, 8, 16, 32, 64]).map((w) => ({ workers: w, seconds: rows / (rowsPerSec * w) })) : [],
  };
}

/** A tap's per-row shape from the layer list: the layer's output (or its input's), pooled as the tap says. */
function modelShape(tap: ResolvedTap, layers: LayerInfo[], format: string): number[] | null {
  const layer = layers.find((l) => l.name === tap.layer);
  if (!layer) return null;
  const from = tap.at === 'input' ? layers.find((l) => l.name === layer.inputs[0]) : layer;
  const full = from?.outputShape;
  if (!full || full.length === 0 || Array.isArray(full[0])) return null;
  const dims = (full as Array<number | null>).slice(1);
  if (dims.some((d) => d === null)) return null;
  const row = dims as number[];
  if (tap.reduce === 'none' || row.length < 2) return row;
  if (tap.axes) return row.filter((_, i) => !tap.axes!.includes(i + 1));
  // spatial pooling keeps the channels: last in NHWC (TF.js), first in NCHW (ONNX)
  return format === 'onnx' ? [row[0]!] : [row[row.length - 1]!];
}
