import { createSink } from '../storage/registry.js';
import { createSource } from '../sources/registry.js';
import type { BatchRunner } from '../workers/batch-runner.js';
import { Batcher, type EmbeddedBatch } from './batcher.js';
import { CarryOverMerge } from './carry-over.js';
import { ChunkedDocuments, chunkBatchJob } from './chunk-rows.js';
import { IncrementalCache } from './incremental.js';
import { defaultRegistries, type Registries } from './registries.js';
import { ShardReader } from './shard-reader.js';
import { ShardWriter } from './shard-writer.js';
import type { ShardJobData, ShardResult } from './types.js';

/** What a shard needs besides its job data. */
export interface ShardContext {
  pool: BatchRunner;
  /** called after each batch with rows embedded and error rows */
  onBatch?: (rows: number, errorRows: number) => void | Promise<void>;
  signal?: AbortSignal;
  /** batches in flight at once. @defaultValue 2 x pool threads, so decode overlaps compute */
  maxInFlight?: number;
  /**
   * what the shards a worker processes share: the content hasher and the base run of an
   * incremental run. @defaultValue one for this shard alone
   */
  incremental?: IncrementalCache;
  /** where the job's source kind, sink scheme, part format and model runtime are found. @defaultValue the built-ins */
  registries?: Registries;
  /** text: sort rows by length within windows of a few batches (less padding). @defaultValue true */
  groupByLength?: boolean;
}

/**
 * Embed one shard, in stages: the reader streams its rows in order (hashing each, and setting
 * aside those an incremental run carries over), the batcher sends batches to the pool with
 * several in flight and takes their results back in order, the carry-over merge puts carried rows
 * back among the computed ones, and the writer appends them to the part file. At the end the
 * writer commits the part file, its row index and, if any row failed, an errors file, under
 * deterministic names, so a retried shard replaces its files instead of adding to them.
 */
export async function processShard(data: ShardJobData, ctx: ShardContext): Promise<ShardResult> {
  const { job, shard } = data;
  const started = performance.now();
  const registries = ctx.registries ?? defaultRegistries();
  const format = registries.formats.get(job.sink.format);
  const sink = await createSink(job.sink, registries.sinks);
  const cache = ctx.incremental ?? new IncrementalCache();
  // incremental: rows whose content the base run already embedded are copied, not recomputed
  const base = data.base ? { run: data.base, lookup: await cache.lookup(data.base, sink) } : null;
  // long documents: each text row is cut into chunks, embedded as rows of their own
  const chunks = job.text?.chunk ? new ChunkedDocuments(job, await textChunker(job)) : null;
  const batcher = new Batcher(chunks ? chunkBatchJob(job) : job, ctx.pool, {
    shardRows: shard.count,
    signal: ctx.signal,
    maxInFlight: ctx.maxInFlight,
    runtimes: registries.runtimes,
    ...(ctx.groupByLength !== undefined ? { groupByLength: ctx.groupByLength } : {}),
  });
  const carry = new CarryOverMerge(
    job.taps.map((t) => t.as),
    base,
  );
  const writer = new ShardWriter(data, sink, format);
  // the reader comes last: it holds the source, which the `finally` below closes
  const reader = new ShardReader(await createSource(job.source, registries.sources), await cache.contentHasher(), base?.lookup ?? null);
  try {
    const hint = { batchRows: batcher.batchRows, allocate: (bytes: number) => ctx.pool.takeBuffer(bytes) };
    const next = async (): Promise<EmbeddedBatch> => {
      const batch = await batcher.next();
      return chunks ? chunks.collect(batch) : batch;
    };
    for await (const row of reader.rows(shard, hint, ctx.signal)) {
      if (row.kind === 'error') {
        writer.addErrors([row.error]);
      } else if (row.kind === 'carry') {
        const values = row.row.carry ?? [];
        const extra = chunks && row.row.kind === 'text' ? chunks.carriedExtra(row.row.text, values) : [values];
        carry.add({ pos: row.pos, id: row.id, hash: row.hash, extra });
      } else if (chunks && row.row.kind === 'text') {
        for (const c of chunks.expand(row.row, row.pos, row.row.carry ?? [])) {
          batcher.add(c.row, c.seq, row.hash, c.extra);
          while (batcher.full) await writeBatch(await next(), carry, writer, ctx.onBatch);
        }
      } else {
        batcher.add(row.row, row.pos, row.hash, row.row.carry ?? []);
        while (batcher.full) await writeBatch(await next(), carry, writer, ctx.onBatch);
      }
    }
    batcher.flush();
    while (batcher.pending > 0) await writeBatch(await next(), carry, writer, ctx.onBatch);
    if (chunks && !chunks.settled) throw new Error(`shard ${shard.index}: a document's chunks did not all come back`);
    // carried rows after the last computed batch (every row of a shard where nothing changed)
    const rest = await carry.rest();
    if (rest.ids.length > 0 && base) {
      const before = writer.documentsWritten;
      await writer.write(rest, { backend: batcher.runtime.backend || base.run.runtime, layout: base.run.layout });
      await ctx.onBatch?.(writer.documentsWritten - before, 0);
    }
    const committed = await writer.commit();
    return {
      index: shard.index,
      rows: committed.rows,
      errorRows: committed.errorRows,
      file: committed.file,
      errorsFile: committed.errorsFile,
      bytes: committed.bytes,
      seconds: (performance.now() - started) / 1000,
      backend: batcher.runtime.backend,
      shapes: writer.shapes,
      layout: batcher.runtime.layout,
      columns: writer.columns,
      decodeMs: batcher.decodeMs,
      forwardMs: batcher.forwardMs,
      carried: carry.carried,
      ...(job.text ? { truncatedRows: batcher.truncated, tokens: batcher.tokens } : {}),
      ...(chunks ? { documents: writer.documentsWritten, chunks: chunks.chunks } : {}),
      ...(committed.duplicateIds ? { duplicateIds: committed.duplicateIds } : {}),
    };
  } catch (err) {
    // let batches still in the pool finish before giving up, so none writes after we return
    await batcher.settle();
    await writer.abort();
    throw err;
  } finally {
    await reader.close();
  }
}

/** A batch's rows, with the carried rows before its end merged in, written; its progress (source rows) reported. */
async function writeBatch(batch: EmbeddedBatch, carry: CarryOverMerge, writer: ShardWriter, onBatch: ShardContext['onBatch']): Promise<void> {
  writer.addErrors(batch.errors);
  const rows = await carry.merge(batch.rows, batch.last);
  const before = writer.documentsWritten;
  await writer.write(rows, batch.runtime);
  await onBatch?.(writer.documentsWritten - before, batch.errors.length);
}

/** The chunker of a chunked text job, with the job's tokenizer (loaded only by text jobs). */
async function textChunker(job: ShardJobData['job']): Promise<import('../preprocess/chunk.js').TextChunker> {
  const text = job.text!;
  const [{ TextTokenizer }, { TextChunker }] = await Promise.all([import('../preprocess/tokenize.js'), import('../preprocess/chunk.js')]);
  return new TextChunker(new TextTokenizer(text), text.prefix, text.chunk!);
}
