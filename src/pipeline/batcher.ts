import type { ResolvedJob } from '../config/resolved.js';
import type { RuntimeRegistry } from '../models/registry.js';
import { pickRows, type TapOutput } from '../types/features.js';
import type { BatchRunner } from '../workers/batch-runner.js';
import { modelSpecOf } from '../workers/model-spec.js';
import type { BatchResult, BatchTask } from '../workers/protocol.js';
import { batchInput } from './batch-input.js';
import type { ExtraValue } from '../types/columns.js';
import type { ErrorRow, FeatureRows, InputRow, RuntimeInfo } from './shard-rows.js';

/** Options for {@link Batcher}. */
export interface BatcherOptions {
  /** rows in the shard: batches are sized so that every thread gets as many */
  shardRows: number;
  /**
   * batches in flight at once; for text grouped by length, the batches of one window, and two
   * windows in flight. @defaultValue 2 x pool threads, so decode overlaps compute
   */
  maxInFlight?: number;
  /** passed to every pool call: aborting it stops the batches in the pool */
  signal?: AbortSignal;
  /** where the pool threads find the model's runtime. @defaultValue the built-ins */
  runtimes?: RuntimeRegistry;
  /**
   * text: sort the rows of each window of a few batches by length before cutting it into
   * batches, so that a batch pads little; results are put back in source order. @defaultValue true
   */
  groupByLength?: boolean;
}

/** One batch as the pool returned it, its rows named by their positions in the shard. */
export interface EmbeddedBatch {
  /** rows that have features */
  rows: FeatureRows;
  /** rows that could not be embedded */
  errors: ErrorRow[];
  /** position of the batch's last row: every row before it has been read */
  last: number;
  runtime: RuntimeInfo;
}

interface SentBatch {
  pos: number[];
  ids: string[];
  hashes: string[];
  extra: ExtraValue[][];
  result: Promise<BatchResult>;
}

/**
 * Text batches sorted by length together (a window). A batch is padded to its longest row, so the
 * wider the window, the closer its batches' rows are in length: for the 4000 sentences of the text
 * bench (5-200 tokens, batches of 32, shards of 512), padded tokens over real ones are 1.90 for
 * windows of 1 batch, 1.24 for 4, 1.12 for 8 and 1.06 for 16. What a window holds is its rows'
 * text and, until the window is taken, their features.
 */
export const TEXT_WINDOW_BATCHES = 16;

/** Batches sent together, whose results are taken back together: one, or a window of text batches. */
type PendingBatch = SentBatch[];

/**
 * Second stage of a shard: fills batches with the rows to embed and sends each to the pool as it
 * fills, keeping a bounded window of batches in flight; results are taken back in the order the
 * batches were sent, so rows stay in source order. Keeps the sums of the pool's timings.
 */
export class Batcher {
  /** rows per batch */
  readonly batchRows: number;
  private readonly maxInFlight: number;
  private readonly columns: string[];
  private readonly model: BatchTask['model'];
  private rows: InputRow[] = [];
  private pos: number[] = [];
  private hashes: string[] = [];
  private extra: ExtraValue[][] = [];
  private readonly inFlight: PendingBatch[] = [];
  private info: RuntimeInfo = { backend: '', layout: 'nhwc' };
  private decode = 0;
  private forward = 0;
  private truncatedRows = 0;
  private tokenCount = 0;
  /** rows a window holds before it is sorted and sent: 1 batch, or for text a few */
  private readonly windowRows: number;

  constructor(
    private readonly job: ResolvedJob,
    private readonly pool: BatchRunner,
    private readonly opts: BatcherOptions,
  ) {
    // equal batches of at most batchSize, a whole number per thread: cut into full batches, the
    // shard's last round would keep some threads idle while another finishes (with 2 threads
    // and 3 batches, a quarter of the time). Results do not depend on how rows are batched.
    const rounds = Math.max(1, Math.ceil(opts.shardRows / (pool.threads * job.batchSize)));
    this.batchRows = Math.max(1, Math.ceil(opts.shardRows / (pool.threads * rounds)));
    const maxInFlight = opts.maxInFlight ?? Math.max(2, pool.threads * 2);
    this.columns = job.taps.map((t) => t.as);
    this.model = modelSpecOf(job, opts.runtimes);
    // text: windows of TEXT_WINDOW_BATCHES batches (at least as many as would be in flight), two
    // windows in flight. The second window keeps the pool busy while the first one's longest
    // batch finishes, and memory stays bounded by two windows.
    const windowBatches = job.text && opts.groupByLength !== false ? Math.max(maxInFlight, TEXT_WINDOW_BATCHES) : 1;
    this.windowRows = this.batchRows * windowBatches;
    this.maxInFlight = windowBatches > 1 ? 2 : maxInFlight;
  }

  /** Adds a row (with its values of the carried and chunk columns) to the batch being filled; a full batch goes to the pool. */
  add(row: InputRow, pos: number, hash: string, extra: ExtraValue[] = []): void {
    this.rows.push(row);
    this.pos.push(pos);
    this.hashes.push(hash);
    this.extra.push(extra);
    if (this.rows.length >= this.windowRows) this.send();
  }

  /** Sends the last, partly filled batch. */
  flush(): void {
    if (this.rows.length > 0) this.send();
  }

  /** True while the window is full: take a result with {@link next} before adding rows. */
  get full(): boolean {
    return this.inFlight.length >= this.maxInFlight;
  }

  /** Batches sent whose results have not been taken. */
  get pending(): number {
    return this.inFlight.length;
  }

  /** The result of the oldest batch (or window of batches) in flight, its rows in source order. */
  async next(): Promise<EmbeddedBatch> {
    const head = this.inFlight.shift();
    if (!head) throw new Error('no batch in flight');
    const results = await Promise.all(head.map((b) => b.result));
    const picks: Array<{ pos: number; part: number; row: number; i: number }> = [];
    const errors: ErrorRow[] = [];
    results.forEach((res, part) => {
      const sent = head[part]!;
      this.info = { backend: res.backend, layout: res.layout };
      this.decode += res.decodeMs;
      this.forward += res.forwardMs;
      this.truncatedRows += res.truncated ?? 0;
      this.tokenCount += res.tokens ?? 0;
      res.ok.forEach((i, row) => picks.push({ pos: sent.pos[i]!, part, row, i }));
      for (const e of res.errors) errors.push({ pos: sent.pos[e.index]!, id: sent.ids[e.index]!, stage: e.stage, message: e.message });
    });
    // a window was sent sorted by length: back to source order
    picks.sort((a, b) => a.pos - b.pos);
    errors.sort((a, b) => a.pos - b.pos);
    const taps: Record<string, TapOutput> = {};
    const inOrder = results.length === 1 && picks.every((p, k) => p.part === 0 && p.row === k);
    if (picks.length > 0) {
      for (const c of this.columns) {
        const outs = results.map((r) => r.taps[c]);
        if (outs.some((o, part) => o === undefined && results[part]!.ok.length > 0)) throw new Error(`the model returned no features for tap '${c}'`);
        // a batch without rows returned no features; none of its rows is picked
        const some = outs.find((o) => o !== undefined)!;
        // the pool's output is taken as it is only when its rows are already in source order:
        // a window of one batch was sorted by length too, so being one batch is not enough
        taps[c] = inOrder
          ? outs[0]!
          : pickRows(
              outs.map((o) => o ?? some),
              picks.map((p) => [p.part, p.row] as const),
            );
      }
    }
    return {
      rows: {
        pos: picks.map((p) => p.pos),
        ids: picks.map((p) => head[p.part]!.ids[p.i]!),
        hashes: picks.map((p) => head[p.part]!.hashes[p.i]!),
        taps,
        extra: picks.map((p) => head[p.part]!.extra[p.i]!),
      },
      errors,
      last: Math.max(-1, ...head.flatMap((b) => b.pos)),
      runtime: this.info,
    };
  }

  /** Waits for every batch still in the pool, so that none is running once a failed shard gives up. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight.flat().map((p) => p.result));
  }

  /** Text: rows cut at maxLength, summed over the batches taken. */
  get truncated(): number {
    return this.truncatedRows;
  }

  /** Text: real tokens (no padding) of the rows embedded, summed over the batches taken. */
  get tokens(): number {
    return this.tokenCount;
  }

  /** The runtime of the last batch taken ('' and nhwc before any). */
  get runtime(): RuntimeInfo {
    return this.info;
  }

  /** Milliseconds the pool threads spent decoding, summed over the batches taken. */
  get decodeMs(): number {
    return this.decode;
  }

  /** Milliseconds the pool threads spent in forward passes, summed over the batches taken. */
  get forwardMs(): number {
    return this.forward;
  }

  private send(): void {
    const order = this.rows.map((_, k) => k);
    // character length stands for token count: tokenizing happens in the pool threads
    if (this.windowRows > this.batchRows) order.sort((a, b) => textLength(this.rows[a]!) - textLength(this.rows[b]!) || a - b);
    const group: PendingBatch = [];
    for (let from = 0; from < order.length; from += this.batchRows) {
      const take = order.slice(from, from + this.batchRows);
      const input = batchInput(
        this.job,
        take.map((k) => this.rows[k]!),
      );
      const result = this.pool.run({ model: this.model, input }, this.opts.signal);
      // a rejection is observed when the batch's result is taken; avoid an unhandled-rejection crash before that
      result.catch(() => undefined);
      group.push({
        pos: take.map((k) => this.pos[k]!),
        ids: input.ids,
        hashes: take.map((k) => this.hashes[k]!),
        extra: take.map((k) => this.extra[k]!),
        result,
      });
    }
    this.inFlight.push(group);
    this.rows = [];
    this.pos = [];
    this.hashes = [];
    this.extra = [];
  }
}

function textLength(row: InputRow): number {
  return row.kind === 'text' ? row.text.length : 0;
}
