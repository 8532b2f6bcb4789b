import type { ResolvedJob } from '../config/resolved.js';
import type { TapOutput } from '../models/types.js';
import { buildSchema, createSink, errorsName, partExtension, partName, PartWriter, runPrefix, writeErrorsFile } from '../sinks/index.js';
import type { Sink } from '../sinks/types.js';
import { createSource } from '../sources/index.js';
import type { SourceRow } from '../sources/types.js';
import { VERSION } from '../version.js';
import type { EmbedPool } from '../workers/pool.js';
import type { BatchInput, BatchResult } from '../workers/protocol.js';
import { ownBuffer } from '../workers/transfer.js';
import type { ShardJobData, ShardResult } from './types.js';

/** What a shard needs besides its job data. */
export interface ShardContext {
  pool: EmbedPool;
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

function batchInput(job: ResolvedJob, rows: Array<Extract<SourceRow, { kind: 'bytes' | 'tensor' }>>): BatchInput {
  const ids = rows.map((r) => r.id);
  // image rows (a folder, a prefix, or a table's image column) are the ones that get preprocessed
  if (job.preprocess !== null) {
    return { kind: 'images', ids, files: rows.map((r) => (r.kind === 'bytes' ? ownBuffer(r.bytes) : new Uint8Array())) };
  }
  const per = job.inputShape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(rows.length * per);
  rows.forEach((r, i) => {
    if (r.kind !== 'tensor') throw new Error(`row ${r.id}: expected a tensor row`);
    data.set(r.data, i * per);
  });
  return { kind: 'tensor', ids, data };
}

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

  const drainOne = async () => {
    const head = pending.shift();
    if (!head) return;
    const res = await head.result;
    backend = res.backend;
    layout = res.layout;
    decodeMs += res.decodeMs;
    forwardMs += res.forwardMs;
    for (const e of res.errors) errors.push({ pos: head.pos[e.index]!, id: head.ids[e.index]!, stage: e.stage, message: e.message });
    if (res.ok.length > 0) {
      if (!writer) {
        shapes = Object.fromEntries(Object.entries(res.taps).map(([k, v]) => [k, v.shape]));
        const schema = buildSchema({
          taps: job.taps,
          shapes,
          layout: res.layout,
          fingerprint: job.fingerprint,
          model: job.model.uri,
          runtime: res.backend,
          version: VERSION,
          runId,
        });
        writer = await PartWriter.open(await sink.createWriter(`${prefix}/${partName(shard.index, partExtension(job.sink.format))}`), schema, job.sink.format);
      }
      const taps: Record<string, TapOutput> = {};
      for (const t of job.taps) {
        const out = res.taps[t.as];
        if (!out) throw new Error(`the model returned no features for tap '${t.as}'`);
        taps[t.as] = out;
      }
      await writer.writeBatch(res.ok.map((i) => head.ids[i]!), taps);
      rows += res.ok.length;
    }
    await ctx.onBatch?.(res.ok.length, res.errors.length);
  };

  const submit = (batch: Array<Extract<SourceRow, { kind: 'bytes' | 'tensor' }>>, positions: number[]) => {
    const input = batchInput(job, batch);
    const result = ctx.pool.run(
      {
        model: { uri: job.model.uri, backend: job.model.backend, taps: job.taps, inputShape: job.inputShape, fingerprint: job.fingerprint, preprocess: job.preprocess },
        input,
      },
      ctx.signal,
    );
    // a rejection is observed when the batch is drained; avoid an unhandled-rejection crash before that
    result.catch(() => undefined);
    pending.push({ ids: input.ids, pos: positions, result });
  };

  try {
    let batch: Array<Extract<SourceRow, { kind: 'bytes' | 'tensor' }>> = [];
    let positions: number[] = [];
    for await (const row of source.read(shard)) {
      if (ctx.signal?.aborted) throw new Error('shard aborted');
      if (row.kind === 'error') {
        errors.push({ pos, id: row.id, stage: row.stage, message: row.message });
      } else {
        batch.push(row);
        positions.push(pos);
        if (batch.length >= job.batchSize) {
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

    let file: string | null = null;
    let bytes = 0;
    if (writer) {
      const closed = await (writer as PartWriter).close();
      file = closed.uri;
      bytes = closed.bytes;
      writer = null;
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
