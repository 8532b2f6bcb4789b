import type { ResolvedJob } from '../config/resolved.js';
import { encodeTap, l2 } from '../models/reductions.js';
import type { TextChunk, TextChunker } from '../preprocess/chunk.js';
import type { ExtraValue } from '../types/columns.js';
import { pickRows, type TapOutput } from '../types/features.js';
import type { EmbeddedBatch } from './batcher.js';
import { noRows, type ErrorRow, type FeatureRows, type InputRow } from './shard-rows.js';

/** A chunk row as the batcher takes it: `seq` stands for its position (chunks of one document share the document's). */
export interface ChunkInput {
  row: InputRow;
  seq: number;
  extra: ExtraValue[];
}

/** What the collector knows of a chunk sent to the batcher. */
interface SentChunk {
  /** the document's position in the shard */
  pos: number;
  chunk: number;
  /** chunks of the document */
  of: number;
  /** tokens of the chunk as the model saw it (special tokens included): its weight in a document's mean */
  tokens: number;
  /** the document's values of the carried columns (reduce: mean writes them once per document) */
  carry: ExtraValue[];
}

/**
 * The batcher's job for a chunked one: with `reduce: mean` the chunks' features are kept in
 * float32 and not normalized, since the document's mean is taken first and normalized after.
 */
export function chunkBatchJob(job: ResolvedJob): ResolvedJob {
  if (job.text?.chunk?.reduce !== 'mean') return job;
  return { ...job, taps: job.taps.map((t) => ({ ...t, normalize: 'none', dtype: 'float32' })) };
}

/**
 * Long documents, between the reader and the writer of a shard. `expand` cuts a document into
 * chunk rows for the batcher, numbered by a sequence of their own (a document's chunks may fall
 * in several batches); `collect` takes the batcher's results back and gives rows by document
 * position again, each document whole: its chunk rows, or one row (`reduce: mean`), or, when a
 * chunk could not be embedded, one error row for the document. The chunk rows of a document
 * that a batch ends inside wait for the next batch (with `reduce: mean`, only their sums do).
 */
export class ChunkedDocuments {
  private next = 0;
  private made = 0;
  private readonly sent = new Map<number, SentChunk>();
  /** chunks of each document sent and not yet whole, by position */
  private readonly chunksOf = new Map<number, number>();
  /** chunks received per document position, and the first error among them */
  private readonly received = new Map<number, { count: number; error: ErrorRow | null }>();
  /** rows of the document a batch ended inside, with what was sent of each */
  private waiting: { rows: FeatureRows; chunks: SentChunk[] } | null = null;
  /** reduce: mean: per document position, its id, hash, carried values and weighted sums so far */
  private readonly sums = new Map<
    number,
    { id: string; hash: string; carry: ExtraValue[]; weight: number; taps: Record<string, { shape: number[]; values: Float64Array }> }
  >();
  /** where the text column is among the carried ones (-1: not carried) */
  private readonly textAt: number;
  private readonly reduce: boolean;

  constructor(
    private readonly job: ResolvedJob,
    private readonly chunker: TextChunker,
  ) {
    this.textAt = (job.carry ?? []).findIndex((c) => c.input === true);
    this.reduce = job.text?.chunk?.reduce === 'mean';
  }

  /** The chunks of a document, as rows for the batcher. */
  expand(row: Extract<InputRow, { kind: 'text' }>, pos: number, carry: ExtraValue[]): ChunkInput[] {
    const chunks = this.chunker.split(row.text);
    this.chunksOf.set(pos, chunks.length);
    this.made += chunks.length;
    return chunks.map((c) => {
      const seq = this.next++;
      this.sent.set(seq, { pos, chunk: c.chunk, of: chunks.length, tokens: c.tokens, carry });
      return { row: { id: row.id, kind: 'text', text: row.text.slice(c.from, c.to) }, seq, extra: this.reduce ? [] : this.chunkExtra(row.text, c, carry) };
    });
  }

  /** The rows a document carried over from a base run writes, each one's carried and chunk values (one row with `reduce: mean`). */
  carriedExtra(text: string, carry: ExtraValue[]): ExtraValue[][] {
    if (this.reduce) return [carry];
    const chunks = this.chunker.split(text);
    this.made += chunks.length;
    return chunks.map((c) => this.chunkExtra(text, c, carry));
  }

  /** Chunks cut so far: of documents embedded, and of carried ones when each chunk is a row. */
  get chunks(): number {
    return this.made;
  }

  /** A batch's results by document: the rows of documents now whole, error rows of those that failed, and the last position whole. */
  collect(batch: EmbeddedBatch): EmbeddedBatch {
    const lastChunk = batch.last >= 0 ? this.sent.get(batch.last) : undefined;
    for (const e of batch.errors) {
      const c = this.take(e.pos);
      this.count(c.pos).error ??= { pos: c.pos, id: e.id, stage: e.stage, message: `chunk ${c.chunk} of ${c.of}: ${e.message}` };
    }
    const chunks = batch.rows.pos.map((seq) => this.take(seq));
    for (const c of chunks) this.count(c.pos);
    // reduce: mean adds each chunk into its document's sums as it comes; else the rows of the
    // document a batch ended inside wait, first in the next batch's rows
    if (this.reduce) this.addToSums(batch.rows, chunks);
    const all = this.reduce ? noRows() : this.waiting ? concatRows(this.waiting.rows, batch.rows) : batch.rows;
    const sent = this.reduce ? [] : this.waiting ? [...this.waiting.chunks, ...chunks] : chunks;
    this.waiting = null;
    const whole = (pos: number): boolean => this.received.get(pos)?.count === this.chunksOf.get(pos);
    // rows up to the last whole document may be merged with carried ones
    const last = lastChunk === undefined ? -1 : whole(lastChunk.pos) ? lastChunk.pos : lastChunk.pos - 1;
    const keep: number[] = [];
    const wait: number[] = [];
    sent.forEach((c, k) => (whole(c.pos) ? keep : wait).push(k));
    const errors: ErrorRow[] = [];
    const failed = new Set<number>();
    const done: number[] = [];
    for (const [pos, r] of this.received) {
      if (r.count !== this.chunksOf.get(pos)) continue;
      if (r.error) {
        errors.push(r.error);
        failed.add(pos);
      } else {
        done.push(pos);
      }
      this.received.delete(pos);
      this.chunksOf.delete(pos);
    }
    let rows: FeatureRows;
    if (this.reduce) {
      for (const pos of failed) this.sums.delete(pos);
      rows = this.meanRows(done.sort((a, b) => a - b));
    } else {
      const good = keep.filter((k) => !failed.has(sent[k]!.pos));
      if (wait.length > 0) this.waiting = { rows: selectRows(all, wait, (k) => sent[k]!.pos), chunks: wait.map((k) => sent[k]!) };
      rows = selectRows(all, good, (k) => sent[k]!.pos);
    }
    errors.sort((a, b) => a.pos - b.pos);
    return { rows, errors, last, runtime: batch.runtime };
  }

  /** True when no document waits for more chunks (the shard's end). */
  get settled(): boolean {
    return this.waiting === null && this.received.size === 0 && this.sent.size === 0 && this.sums.size === 0;
  }

  private take(seq: number): SentChunk {
    const c = this.sent.get(seq);
    if (!c) throw new Error(`chunk row ${seq} came back twice or was never sent`);
    this.sent.delete(seq);
    return c;
  }

  private count(pos: number): { count: number; error: ErrorRow | null } {
    let r = this.received.get(pos);
    if (!r) this.received.set(pos, (r = { count: 0, error: null }));
    r.count++;
    return r;
  }

  private chunkExtra(text: string, c: TextChunk, carry: ExtraValue[]): ExtraValue[] {
    const values = carry.slice();
    // the text column holds each chunk's own text
    if (this.textAt >= 0) values[this.textAt] = text.slice(c.from, c.to);
    values.push(c.chunk, c.start, c.end);
    return values;
  }

  /** Adds each chunk row's features, times its tokens, to its document's sums (float64: a long document adds many terms). */
  private addToSums(rows: FeatureRows, chunks: SentChunk[]): void {
    chunks.forEach((c, k) => {
      let doc = this.sums.get(c.pos);
      if (!doc) {
        doc = { id: rows.ids[k]!, hash: rows.hashes[k]!, carry: c.carry, weight: 0, taps: {} };
        this.sums.set(c.pos, doc);
      }
      doc.weight += c.tokens;
      for (const tap of this.job.taps) {
        const src = rows.taps[tap.as]!;
        if (src.lengths !== undefined || !(src.data instanceof Float32Array))
          throw new Error(`tap '${tap.as}': chunk reduce mean needs one float32 vector per chunk`);
        const per = src.shape.reduce((a, b) => a * b, 1);
        const sum = (doc.taps[tap.as] ??= { shape: src.shape, values: new Float64Array(per) }).values;
        for (let j = 0; j < per; j++) sum[j]! += c.tokens * src.data[k * per + j]!;
      }
    });
  }

  /**
   * One row per whole document at `positions`: for each tap, the sum of its chunks' features
   * weighted by their tokens over the sum of the weights (sum of n_k x_k over sum of n_k), then
   * the tap's normalize and dtype.
   */
  private meanRows(positions: number[]): FeatureRows {
    const out: FeatureRows = { pos: [], ids: [], hashes: [], taps: {}, extra: [] };
    const docs = positions.map((pos) => {
      const doc = this.sums.get(pos);
      if (!doc) throw new Error(`document at ${pos} is whole but has no sums`);
      this.sums.delete(pos);
      out.pos.push(pos);
      out.ids.push(doc.id);
      out.hashes.push(doc.hash);
      out.extra.push(doc.carry);
      return doc;
    });
    if (docs.length === 0) return out;
    for (const tap of this.job.taps) {
      const shape = docs[0]!.taps[tap.as]!.shape;
      const per = shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(docs.length * per);
      docs.forEach((doc, d) => {
        const sum = doc.taps[tap.as]!.values;
        for (let j = 0; j < per; j++) values[d * per + j] = sum[j]! / doc.weight;
      });
      out.taps[tap.as] = encodeTap(tap.normalize === 'l2' ? l2(values, per, values) : values, shape, tap);
    }
    return out;
  }
}

/** Rows `picks` of `rows`, in that order, with their positions given by `pos`. */
function selectRows(rows: FeatureRows, picks: number[], pos: (k: number) => number): FeatureRows {
  const taps: Record<string, TapOutput> = {};
  if (picks.length > 0)
    for (const [c, out] of Object.entries(rows.taps))
      taps[c] = pickRows(
        [out],
        picks.map((k) => [0, k] as const),
      );
  return {
    pos: picks.map(pos),
    ids: picks.map((k) => rows.ids[k]!),
    hashes: picks.map((k) => rows.hashes[k]!),
    taps,
    extra: picks.map((k) => rows.extra[k]!),
  };
}

/** Two runs of rows one after the other. */
function concatRows(a: FeatureRows, b: FeatureRows): FeatureRows {
  if (a.ids.length === 0) return b;
  if (b.ids.length === 0) return a;
  const picks = [...a.ids.map((_, k) => [0, k] as const), ...b.ids.map((_, k) => [1, k] as const)];
  const taps: Record<string, TapOutput> = {};
  for (const c of Object.keys(a.taps)) taps[c] = pickRows([a.taps[c]!, b.taps[c]!], picks);
  return { pos: [...a.pos, ...b.pos], ids: [...a.ids, ...b.ids], hashes: [...a.hashes, ...b.hashes], taps, extra: [...a.extra, ...b.extra] };
}
