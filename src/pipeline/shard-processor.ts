import type { ResolvedJob } from '../config/resolved.js';
import type { TapOutput } from '../types/features.js';
import { tableToIPC } from 'apache-arrow';
import { buildSchema, partExtension, PartWriter, writeErrorsFile } from '../sinks/index.js';
import { errorsName, partName, rowIndexKey, runPrefix } from '../storage/layout.js';
import { createSink } from '../storage/index.js';
import type { Sink } from '../storage/types.js';
import { createSource } from '../sources/index.js';
import type { SourceRow } from '../sources/types.js';
import { VERSION } from '../version.js';
import { modelSpecOf } from '../workers/model-spec.js';
import type { BatchRunner } from '../workers/batch-runner.js';
import type { BatchInput, BatchResult } from '../workers/protocol.js';
import { ownBuffer } from '../workers/transfer.js';
import { BaseLookup, contentHasher, encodeRowIndex, mergeRows } from './incremental.js';
import type { ShardJobData, ShardResult } from './types.js';

/** What a shard needs besides its job data. */
export interface ShardContext {
  pool: BatchRunner;
  /** called after each batch with rows embedded and error rows */
  onBatch?: (rows: number, errorRows: number) => void | Promise<void>;
  signal?: AbortSignal;
  /** batches in flight at once. @defaultValue 2 x pool threads, so decode overlaps compute */
  maxInFlight?: number;
}

interface ErrorRow {
  pos: number;
  id: string;
  stage: string;
  message: string;
}

interface PendingBatch {
  ids: string[];
  /** position in the shard of each row of the batch */
  pos: number[];
  result: Promise<BatchResult>;
}

/** The pool input for a batch of source rows (exported for tests). */
export function batchInput(job: ResolvedJob, rows: Array<Extract<SourceRow, { kind: 'bytes' | 'tensor' }>>): BatchInput {
  const ids = rows.map((r) => r.id);
  // image rows (a folder, a prefix, or a table's image column) are the ones that get preprocessed
  if (job.preprocess !== null) {
    return { kind: 'images', ids, files: rows.map((r) => (r.kind === 'bytes' ? ownBuffer(r.bytes) : new Uint8Array())) };
  }
  const tensors = rows.map((r) => {
    if (r.kind !== 'tensor') throw new Error(`row ${r.id}: expected a tensor row`);
    return r.data;
  });
  const per = job.inputShape.reduce((a, b) => a * b, 1);
  const whole = wholeBuffer(tensors, per);
  if (whole) {
    // the source read exactly this batch into one buffer: it crosses as it is, nothing copied
    return { kind: 'tensor', ids, data: whole };
  }
  if (per * 4 >= ROWS_BY_TRANSFER_BYTES) {
    // big rows go by transfer as they are and the thread lays them out as one batch: copying them
    // into a fresh batch here doubled the memory this thread allocates, and the GC work with it
    return { kind: 'rows', ids, rows: tensors.map((t) => ownBuffer(t)) };
  }
  // small rows: one copy is cheaper than a transfer per row
  const data = new Float32Array(rows.length * per);
  tensors.forEach((t, i) => data.set(t, i * per));
  return { kind: 'tensor', ids, data };
}

/** The batch as one array when its rows are consecutive views that fill one ArrayBuffer exactly, else null. */
function wholeBuffer(rows: Float32Array[], per: number): Float32Array | null {
  const first = rows[0];
  if (!first || !(first.buffer instanceof ArrayBuffer) || first.buffer.byteLength !== rows.length * per * 4) return null;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.buffer !== first.buffer || r.byteOffset !== i * per * 4 || r.length !== per) return null;
  }
  return new Float32Array(first.buffer);
}

/** Rows at least this big (bytes) cross to the pool thread one buffer each instead of copied into one batch. */
const ROWS_BY_TRANSFER_BYTES = 64 * 1024;

/**
 * Embed one shard: stream its rows, run batches on the pool (several in flight, results taken in
 * order), write one part file and, if any row failed, one errors file. Both are committed under
 * deterministic names, so a retried shard replaces its files instead of adding to them.
 */
export async function processShard(data: ShardJobData, ctx: ShardContext): Promise<ShardResult> {
  const { job, shard, runId } = data;
  const started = performance.now();
  const prefix = runPrefix(job.name, job.fingerprint, runId);
  const sink: Sink = createSink(job.sink);
  const source = createSource(job.source);
  const maxInFlight = ctx.maxInFlight ?? Math.max(2, ctx.pool.threads * 2);
  const pending: PendingBatch[] = [];
  const errors: ErrorRow[] = [];
  let writer: PartWriter | null = null;
  let rows = 0;
  let backend = '';
  let layout: 'nhwc' | 'nchw' = 'nhwc';
  let shapes: Record<string, number[]> = {};
  let decodeMs = 0;
  let forwardMs = 0;
  let pos = 0;
  // incremental: rows whose content is already embedded in the base run are copied, not recomputed
  const lookup = data.base ? await BaseLookup.open(data.base, sink) : null;
  const contentHash = await contentHasher();
  const carried: Array<{ pos: number; id: string; hash: string }> = [];
  let carriedRows = 0;
  const hashes = new Map<number, string>();
  const written: { ids: string[]; hashes: string[] } = { ids: [], hashes: [] };
  const columns = job.taps.map((t) => t.as);
  const model = modelSpecOf(job);

  const writeRows = async (ids: string[], positions: number[], taps: Record<string, TapOutput>, meta: { backend: string; layout: 'nhwc' | 'nchw' }) => {
    if (ids.length === 0) return;
    if (!writer) {
      shapes = Object.fromEntries(columns.map((c) => [c, taps[c]!.shape]));
      const schema = buildSchema({
        taps: job.taps,
        shapes,
        layout: meta.layout,
        fingerprint: job.fingerprint,
        model: job.model.uri,
        runtime: meta.backend,
        version: VERSION,
        runId,
      });
      writer = await PartWriter.open(await sink.createWriter(`${prefix}/${partName(shard.index, partExtension(job.sink.format))}`), schema, job.sink.format);
    }
    await writer.writeBatch(ids, taps);
    rows += ids.length;
    written.ids.push(...ids);
    for (const p of positions) written.hashes.push(hashes.get(p)!);
  };

  /** Carried rows up to position `upTo` (inclusive), with their vectors read from the base run. */
  const takeCarried = async (upTo: number) => {
    const take: typeof carried = [];
    while (carried.length > 0 && carried[0]!.pos <= upTo) take.push(carried.shift()!);
    const vectors = [];
    for (const c of take) vectors.push(await lookup!.vectors(c.hash, columns));
    return { pos: take.map((c) => c.pos), ids: take.map((c) => c.id), rows: vectors };
  };

  const drainOne = async () => {
    const head = pending.shift();
    if (!head) return;
    const res = await head.result;
    backend = res.backend;
    layout = res.layout;
    decodeMs += res.decodeMs;
    forwardMs += res.forwardMs;
    for (const e of res.errors) errors.push({ pos: head.pos[e.index]!, id: head.ids[e.index]!, stage: e.stage, message: e.message });
    const taps: Record<string, TapOutput> = {};
    if (res.ok.length > 0) {
      for (const c of columns) {
        const out = res.taps[c];
        if (!out) throw new Error(`the model returned no features for tap '${c}'`);
        taps[c] = out;
      }
    }
    const okPos = res.ok.map((i) => head.pos[i]!);
    const okIds = res.ok.map((i) => head.ids[i]!);
    const carry = lookup ? await takeCarried(head.pos[head.pos.length - 1] ?? -1) : null;
    if (carry && carry.ids.length > 0) {
      if (res.ok.length > 0) shapes = Object.fromEntries(columns.map((c) => [c, taps[c]!.shape]));
      const merged = mergeRows(columns, { pos: okPos, ids: okIds, taps }, carry, shapes);
      await writeRows(merged.ids, [...okPos, ...carry.pos].sort((a, b) => a - b), merged.taps, res);
      carriedRows += carry.ids.length;
    } else if (res.ok.length > 0) {
      await writeRows(okIds, okPos, taps, res);
    }
    await ctx.onBatch?.(res.ok.length + (carry?.ids.length ?? 0), res.errors.length);
  };

  const submit = (batch: Array<Extract<SourceRow, { kind: 'bytes' | 'tensor' }>>, positions: number[]) => {
    const input = batchInput(job, batch);
    const result = ctx.pool.run({ model, input }, ctx.signal);
    // a rejection is observed when the batch is drained; avoid an unhandled-rejection crash before that
    result.catch(() => undefined);
    pending.push({ ids: input.ids, pos: positions, result });
  };

  try {
    let batch: Array<Extract<SourceRow, { kind: 'bytes' | 'tensor' }>> = [];
    let positions: number[] = [];
    // equal batches of at most batchSize, a whole number per thread: cut into full batches, the
    // shard's last round would keep some threads idle while another finishes (with 2 threads
    // and 3 batches, a quarter of the time). Results do not depend on how rows are batched.
    const rounds = Math.max(1, Math.ceil(shard.count / (ctx.pool.threads * job.batchSize)));
    const batchRows = Math.max(1, Math.ceil(shard.count / (ctx.pool.threads * rounds)));
    for await (const row of source.read(shard, { batchRows, allocate: (bytes) => ctx.pool.takeBuffer(bytes) })) {
      if (ctx.signal?.aborted) throw new Error('shard aborted');
      if (row.kind === 'error') {
        errors.push({ pos, id: row.id, stage: row.stage, message: row.message });
      } else {
        const hash = contentHash(row);
        hashes.set(pos, hash);
        if (lookup?.has(hash)) {
          carried.push({ pos, id: row.id, hash });
          pos++;
          continue;
        }
        batch.push(row);
        positions.push(pos);
        if (batch.length >= batchRows) {
          submit(batch, positions);
          batch = [];
          positions = [];
          while (pending.length >= maxInFlight) await drainOne();
        }
      }
      pos++;
    }
    if (batch.length > 0) submit(batch, positions);
    while (pending.length > 0) await drainOne();
    if (carried.length > 0) {
      // carried rows after the last computed batch (or a shard where nothing changed)
      const carry = await takeCarried(Number.POSITIVE_INFINITY);
      if (Object.keys(shapes).length === 0) shapes = data.base!.shapes;
      const merged = mergeRows(columns, { pos: [], ids: [], taps: {} }, carry, shapes);
      await writeRows(merged.ids, carry.pos, merged.taps, { backend: backend || data.base!.runtime, layout: data.base!.layout });
      carriedRows += carry.ids.length;
      await ctx.onBatch?.(carry.ids.length, 0);
    }

    let file: string | null = null;
    let bytes = 0;
    if (writer) {
      const closed = await (writer as PartWriter).close();
      file = closed.uri;
      bytes = closed.bytes;
      writer = null;
    }
    if (written.ids.length > 0) {
      await sink.put(rowIndexKey(prefix, shard.index), tableToIPC(encodeRowIndex(written.ids, written.hashes), 'file'));
    }
    let errorsFile: string | null = null;
    if (errors.length > 0) {
      errors.sort((a, b) => a.pos - b.pos);
      errorsFile = await writeErrorsFile(sink, `${prefix}/${errorsName(shard.index)}`, errors.map(({ id, stage, message }) => ({ id, stage, message })));
    }
    if (rows + errors.length !== shard.count) {
      throw new Error(`shard ${shard.index}: ${rows} rows + ${errors.length} errors, but the shard has ${shard.count} rows`);
    }
    return {
      index: shard.index,
      rows,
      errorRows: errors.length,
      file,
      errorsFile,
      bytes,
      seconds: (performance.now() - started) / 1000,
      backend,
      shapes,
      layout,
      decodeMs,
      forwardMs,
      carried: carriedRows,
    };
  } catch (err) {
    // let batches still in the pool finish before giving up, so none writes after we return
    await Promise.allSettled(pending.map((p) => p.result));
    if (writer) await (writer as PartWriter).abort().catch(() => undefined);
    throw err;
  } finally {
    await source.close();
  }
}
