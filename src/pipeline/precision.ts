import { JobConfigError } from '../config/errors.js';
import type { PrecisionFigure, PrecisionReport, ResolvedJob } from '../config/resolved.js';
import type { ModelSpec } from '../models/types.js';
import { createSource } from '../sources/registry.js';
import type { ShardSpec } from '../sources/types.js';
import { fromFloat16Array } from '../types/float16.js';
import { pickRows, type TapOutput } from '../types/features.js';
import type { BatchRunner } from '../workers/batch-runner.js';
import { modelSpecOf } from '../workers/model-spec.js';
import type { BatchResult } from '../workers/protocol.js';
import { batchInput } from './batch-input.js';
import { defaultRegistries, type Registries } from './registries.js';
import type { InputRow } from './shard-rows.js';

// The price of int8, measured on every run: the first `model.precisionSample` rows run through
// the int8 model and the fp32 one, in the pool threads as the run's batches do, and each tap
// column of the two is compared row by row (token by token for a ragged column).

/** Running sums of one column's comparison. */
class ColumnPrice {
  private sum = 0;
  private n = 0;
  private min = Infinity;
  private maxAbs = 0;

  /** Compare items of `per` values: cosine of each pair, and the largest difference of a value. */
  add(a: Float32Array, b: Float32Array, per: number): void {
    if (a.length !== b.length) throw new Error(`int8 and fp32 features differ in size (${a.length} and ${b.length} values)`);
    for (let start = 0; start < a.length; start += per) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let k = start, end = start + per; k < end; k++) {
        const x = a[k]!;
        const y = b[k]!;
        dot += x * y;
        na += x * x;
        nb += y * y;
        const d = Math.abs(x - y);
        if (d > this.maxAbs) this.maxAbs = d;
      }
      // two zero vectors are the same vector; one zero vector is as far as can be
      const cos = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
      this.sum += cos;
      this.n++;
      if (cos < this.min) this.min = cos;
    }
  }

  figure(): PrecisionFigure {
    return this.n === 0 ? { meanCosine: 1, minCosine: 1, maxAbsDiff: 0 } : { meanCosine: this.sum / this.n, minCosine: this.min, maxAbsDiff: this.maxAbs };
  }
}

function floats(out: TapOutput): Float32Array {
  return out.data instanceof Float32Array ? out.data : fromFloat16Array(out.data);
}

/** Values per compared item: a row of a fixed-size column, a token of a ragged one. */
function itemSize(out: TapOutput): number {
  return out.shape.reduce((a, b) => a * b, 1);
}

/** The rows of `out` at `picks` (indices into its rows), one after another, as float32. */
function rowsOf(out: TapOutput, picks: number[]): Float32Array {
  return floats(
    pickRows(
      [out],
      picks.map((r) => [0, r] as const),
    ),
  );
}

/** A copy of a row the pool may take by transfer, so that the same row can be sent twice. */
function copyRow(row: InputRow): InputRow {
  if (row.kind === 'tensor') return { ...row, data: row.data.slice() };
  if (row.kind === 'bytes') return { ...row, bytes: row.bytes.slice() };
  return row;
}

function textLength(row: InputRow): number {
  return row.kind === 'text' ? row.text.length : 0;
}

/** The spec the reference runs: the job's model at fp32, cached in the threads under a key of its own. */
function fp32Spec(spec: ModelSpec): ModelSpec {
  const { precision: _int8, ...rest } = spec;
  return { ...rest, fingerprint: `${spec.fingerprint}-fp32` };
}

/**
 * Run the first `model.precisionSample` rows of an int8 job at int8 and at fp32 and compare each
 * tap column. Rows that fail in either run (decode errors, NaN features) are left out of the sample.
 */
export async function measurePrecision(job: ResolvedJob, pool: BatchRunner, registries: Registries = defaultRegistries()): Promise<PrecisionReport> {
  if (job.model.precision !== 'int8') throw new Error('measurePrecision: the job is not int8');
  const want = job.model.precisionSample ?? 256;
  const int8 = modelSpecOf(job, registries.runtimes);
  const fp32 = fp32Spec(int8);
  const prices = new Map(job.taps.map((t) => [t.as, new ColumnPrice()]));
  let sample = 0;
  const compare = (a: BatchResult, b: BatchResult): void => {
    const inB = new Map(b.ok.map((row, i) => [row, i]));
    const pairs = a.ok.flatMap((row, i) => (inB.has(row) ? [[i, inB.get(row)!] as const] : []));
    sample += pairs.length;
    for (const [col, price] of prices) {
      const x = a.taps[col];
      const y = b.taps[col];
      if (x === undefined || y === undefined) throw new Error(`tap column '${col}' missing from a sample batch`);
      price.add(
        rowsOf(
          x,
          pairs.map(([i]) => i),
        ),
        rowsOf(
          y,
          pairs.map(([, j]) => j),
        ),
        itemSize(x),
      );
    }
  };
  const runBoth = async (rows: InputRow[]): Promise<void> => {
    const [a, b] = await Promise.all([
      pool.run({ model: int8, input: batchInput(job, rows.map(copyRow)) }),
      pool.run({ model: fp32, input: batchInput(job, rows.map(copyRow)) }),
    ]);
    compare(a, b);
  };

  const source = await createSource(job.source, registries.sources);
  try {
    // the first shard of shards of `want` rows is the first `want` rows, whatever the source
    let first: ShardSpec | undefined;
    for await (const shard of source.plan(want)) {
      first = shard;
      break;
    }
    const running: Promise<void>[] = [];
    const start = (rows: InputRow[]): void => {
      const p = runBoth(rows);
      // awaited below; a failure must not count as unhandled meanwhile
      p.catch(() => undefined);
      running.push(p);
    };
    const batches = async function* (): AsyncGenerator<InputRow[]> {
      if (first === undefined) return;
      if (job.text !== undefined) {
        // text rows by length, as the run groups them (character length stands for tokens): a
        // batch is padded to its longest row, so mixed lengths would cost the sample up to twice
        const rows: InputRow[] = [];
        for await (const row of source.read(first)) if (row.kind !== 'error') rows.push(row);
        rows.sort((a, b) => textLength(a) - textLength(b));
        for (let from = 0; from < rows.length; from += job.batchSize) yield rows.slice(from, from + job.batchSize);
        return;
      }
      // images and tensors stream: they are not grouped, and their rows can be large
      let batch: InputRow[] = [];
      for await (const row of source.read(first)) {
        if (row.kind === 'error') continue;
        batch.push(row);
        if (batch.length === job.batchSize) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    };
    for await (const batch of batches()) {
      start(batch);
      // a batch per thread and precision in flight keeps the threads busy without reading far ahead of them
      if (running.length >= pool.threads) await running.shift();
    }
    await Promise.all(running);
  } finally {
    await source.close();
  }
  return { mode: 'int8', sample, taps: Object.fromEntries([...prices].map(([col, p]) => [col, p.figure()])) };
}

/** One line per tap: what int8 cost on the sample, as `run` prints it. */
export function describePrecision(report: PrecisionReport): string {
  const taps = Object.entries(report.taps).map(
    ([col, f]) => `${col} mean ${f.meanCosine.toFixed(5)} (lowest ${f.minCosine.toFixed(5)}, largest difference ${f.maxAbsDiff.toPrecision(3)})`,
  );
  return `int8: cosine to fp32 on the first ${report.sample} rows: ${taps.join('; ')}`;
}

/**
 * Refuse a run whose sample fell below `model.minCosine`: the tap whose mean cosine is lowest, if
 * under the bound, fails the job with one line naming it and the figure.
 */
export function checkPrecision(job: ResolvedJob, report: PrecisionReport): void {
  const bound = job.model.minCosine;
  if (bound === undefined) return;
  const worst = Object.entries(report.taps).sort(([, a], [, b]) => a.meanCosine - b.meanCosine)[0];
  if (worst === undefined) return;
  const [col, f] = worst;
  if (f.meanCosine < bound) {
    throw new JobConfigError(
      `model.minCosine: tap '${col}' has mean cosine ${f.meanCosine.toFixed(5)} to fp32 on the first ${report.sample} rows (lowest row ${f.minCosine.toFixed(5)}), below ${bound}; the run was not started`,
      ['model.minCosine'],
    );
  }
}

/** Options of {@link priceInt8}. */
export interface PriceOptions {
  /** the pool to run the sample on. @defaultValue a pool of its own, closed after the sample */
  pool?: BatchRunner;
  /** @defaultValue the built-ins */
  registries?: Registries;
  /** called with the figure's line ({@link describePrecision}) */
  onFigure?: (line: string, report: PrecisionReport) => void;
}

/**
 * For an int8 job, measure the price on its first rows, record it in `job.precision` (the
 * manifest's), and refuse the job below `model.minCosine`; nothing for an fp32 job. Every way a
 * run is started (`run`, `enqueue`, a schedule's tick) goes through here before the run is queued.
 */
export async function priceInt8(job: ResolvedJob, opts: PriceOptions = {}): Promise<PrecisionReport | null> {
  if (job.model.precision !== 'int8') return null;
  let pool = opts.pool;
  let own: { close(): Promise<void> } | null = null;
  if (pool === undefined) {
    const { EmbedPool } = await import('../workers/pool.js');
    const made = new EmbedPool({ backend: job.model.backend, ...(opts.registries ? { runtimes: opts.registries.runtimes } : {}) });
    pool = made;
    own = made;
  }
  try {
    const report = await measurePrecision(job, pool, opts.registries);
    job.precision = report;
    opts.onFigure?.(describePrecision(report), report);
    checkPrecision(job, report);
    return report;
  } finally {
    await own?.close();
  }
}
