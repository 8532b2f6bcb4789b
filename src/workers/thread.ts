import { existsSync } from 'node:fs';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { singleFloatInput } from '../models/model-inputs.js';
import { loadRunner } from '../models/registry.js';
import type { ModelRunner, ModelSpec, TapOutput } from '../models/types.js';
import { tokenTapValues } from '../models/reductions.js';
import type { ResolvedText } from '../config/resolved.js';
import type { TextTokenizer } from '../preprocess/tokenize.js';
import { LayertapError } from '../types/errors.js';
import { pickRows } from '../types/features.js';
import { rawTapName } from './model-spec.js';
import type { BatchOutcome, BatchResult, BatchTask, RowError } from './protocol.js';
import { firstNonFinite } from './finite.js';
import { ownBuffer, transferList } from './transfer.js';

/** Models a thread keeps loaded at once. */
const MAX_MODELS = 2;

/**
 * What this thread keeps from one batch to the next: the models it loaded and its batch buffer.
 * The thread module owns the one instance; it lives as long as the thread (the pool keeps its
 * threads for the life of the worker).
 */
class ThreadState {
  /** models loaded in this thread, by fingerprint: each is loaded once and reused for every batch */
  private readonly runners = new Map<string, Promise<ModelRunner>>();
  /** the batch buffer for decoded images and tensor rows, grown as needed and reused by every batch */
  private scratch: Float32Array | null = null;
  /** the tokenizer of the last text job, loaded once for all its batches */
  private tokenizer: { key: string; tokenizer: Promise<TextTokenizer> } | null = null;

  tokenizerFor(text: ResolvedText): Promise<TextTokenizer> {
    const key = JSON.stringify([text.tokenizerHash, text.tokenizer, text.tokenizerConfig, text.maxLength, text.prefix]);
    if (this.tokenizer?.key !== key) {
      // the tokenizer library is loaded by the first text batch: image and tensor jobs never need it
      const tokenizer = import('../preprocess/tokenize.js').then(({ TextTokenizer }) => new TextTokenizer(text));
      this.tokenizer = { key, tokenizer };
    }
    return this.tokenizer.tokenizer;
  }

  /** Hub models' specs with their files in this host's Hub cache, by fingerprint (fetched once, when planning's are not here) */
  private readonly here = new Map<string, Promise<ModelSpec>>();

  specHere(spec: ModelSpec): Promise<ModelSpec> {
    if (spec.hub === undefined || existsSync(spec.uri)) return Promise.resolve(spec);
    let p = this.here.get(spec.fingerprint);
    if (!p) {
      // the Hub client loads only where a Hub model's files are missing
      p = import('../models/hub/here.js').then(({ specHere }) => specHere(spec));
      p.catch(() => this.here.delete(spec.fingerprint));
      this.here.set(spec.fingerprint, p);
    }
    return p;
  }

  runnerFor(spec: ModelSpec): Promise<ModelRunner> {
    let r = this.runners.get(spec.fingerprint);
    if (!r) {
      if (this.runners.size >= MAX_MODELS) {
        const [oldest, p] = this.runners.entries().next().value as [string, Promise<ModelRunner>];
        this.runners.delete(oldest);
        void p.then((m) => m.dispose()).catch(() => undefined);
      }
      r = loadRunner(spec).catch((err: unknown) => {
        this.runners.delete(spec.fingerprint);
        throw err;
      });
      this.runners.set(spec.fingerprint, r);
    }
    return r;
  }

  scratchFor(length: number): Float32Array {
    if (!this.scratch || this.scratch.length < length) this.scratch = new Float32Array(length);
    return this.scratch.subarray(0, length);
  }

  /** Whether `buffer` is this thread's batch buffer. */
  isScratch(buffer: ArrayBufferLike): boolean {
    return buffer === this.scratch?.buffer;
  }
}

const thread = new ThreadState();

function rowSize(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** True when any value of row `i` is NaN or infinite. */
function rowNotFinite(out: TapOutput, i: number): boolean {
  const n = rowSize(out.shape);
  const d = out.data;
  if (d instanceof Float32Array) {
    for (let k = i * n, end = k + n; k < end; k++) if (!Number.isFinite(d[k]!)) return true;
  } else {
    // IEEE half: exponent bits all ones is Inf or NaN
    for (let k = i * n, end = k + n; k < end; k++) if ((d[k]! & 0x7c00) === 0x7c00) return true;
  }
  return false;
}

function dropRows(out: TapOutput, keep: number[]): TapOutput {
  return pickRows(
    [out],
    keep.map((r) => [0, r] as const),
  );
}

/**
 * The error of a tensor row with a NaN or infinite value, or null when every value is finite.
 * Such rows are left out of the batch: a model can map them to finite values (a ReLU or a max
 * pool may drop a NaN) and nothing downstream would know.
 */
function badInput(values: Float32Array, start: number, per: number): Omit<RowError, 'index'> | null {
  const at = firstNonFinite(values, start, start + per);
  return at < 0 ? null : { stage: 'input', message: `input value ${at} of ${per} is ${values[start + at]}; NaN and Inf inputs give meaningless features` };
}

/**
 * Keeps the rows of `batch` (`rows` rows of `per` values) in which `problem` finds nothing,
 * moved to the front in order (the model takes a contiguous batch); the others become error
 * rows. Returns the kept rows as a view of `batch`.
 */
function keepGoodRows(
  batch: Float32Array,
  rows: number,
  per: number,
  problem: (i: number) => Omit<RowError, 'index'> | null,
  ok: number[],
  errors: RowError[],
): Float32Array {
  let j = 0;
  for (let i = 0; i < rows; i++) {
    const p = problem(i);
    if (p !== null) {
      errors.push({ index: i, ...p });
      continue;
    }
    if (j !== i) batch.copyWithin(j * per, i * per, (i + 1) * per);
    ok.push(i);
    j++;
  }
  return batch.subarray(0, j * per);
}

/**
 * A batch of text: tokenized here (the pool threads are where heavy work goes; the worker's main
 * thread reads rows and writes files), one forward pass, then each tap pooled over every row's
 * real tokens.
 */
async function runText(runner: ModelRunner, text: NonNullable<ModelSpec['text']>, texts: string[]): Promise<BatchResult> {
  const t0 = performance.now();
  const tokenizer = await thread.tokenizerFor(text.spec);
  const { textInputs } = await import('../preprocess/tokenize.js');
  const batch = tokenizer.encode(texts);
  const { inputs } = textInputs(batch, text.spec.inputs);
  const lengths = Int32Array.from(batch.ids, (r) => r.length);
  const t1 = performance.now();
  const raw = texts.length > 0 ? await runner.run(inputs) : {};
  const taps: Record<string, TapOutput> = {};
  if (texts.length > 0) {
    for (const tap of text.taps) {
      const out = raw[rawTapName(tap)];
      if (!out || !(out.data instanceof Float32Array)) throw new Error(`tap '${tap.as}' (${tap.layer}) produced no float32 tensor`);
      taps[tap.as] = tokenTapValues(out.data, [texts.length, ...out.shape], lengths, tap, runner.layout);
    }
  }
  const t2 = performance.now();
  let ok = texts.map((_, i) => i);
  const errors: RowError[] = [];
  const bad = new Set<number>();
  for (const out of Object.values(taps)) if (!out.lengths) for (let r = 0; r < ok.length; r++) if (rowNotFinite(out, r)) bad.add(r);
  if (bad.size > 0) {
    for (const r of bad) errors.push({ index: r, stage: 'features', message: 'features contain NaN or Inf' });
    ok = ok.filter((r) => !bad.has(r));
    for (const k of Object.keys(taps)) taps[k] = dropRows(taps[k]!, ok);
  }
  return {
    ok,
    errors,
    taps,
    backend: runner.backend,
    layout: runner.layout,
    decodeMs: t1 - t0,
    forwardMs: t2 - t1,
    truncated: batch.truncated,
    tokens: lengths.reduce((a, b) => a + b, 0),
  };
}

/** The result with its feature buffers moved, not copied, to the main thread. */
function moved(result: BatchResult, extra: ArrayBuffer[] = []): unknown {
  const buffers = transferList(Object.values(result.taps).flatMap((o) => (o.lengths ? [o.data, o.lengths] : [o.data])));
  buffers.push(...extra);
  return move({ [transferableSymbol]: buffers, [valueSymbol]: result } as unknown as Parameters<typeof move>[0]) as unknown;
}

/** Thread entry: decode (for images) or tokenize (text), run one forward pass with every tap, return features by transfer. */
export default async function runBatch(task: BatchTask): Promise<unknown> {
  let runner: ModelRunner;
  let model: ModelSpec;
  try {
    model = await thread.specHere(task.model);
    runner = await thread.runnerFor(model);
  } catch (err) {
    // a Hub that does not answer may answer the next attempt: not a model that cannot load
    if (err instanceof LayertapError && err.retryable) throw err;
    // a thrown error reaches the pool as a bare message; this says what failed, as data
    return { modelLoadFailure: { uri: task.model.uri, message: err instanceof Error ? err.message : String(err) } } satisfies BatchOutcome;
  }
  if (task.input.kind === 'text') {
    if (!model.text) throw new Error('text batch for a model spec without text settings');
    return moved(await runText(runner, model.text, task.input.texts));
  }
  const errors: RowError[] = [];
  let ok: number[] = [];
  let input: Float32Array;
  // a contiguous tensor batch goes back to the main thread with the result, for its next read
  let handBack: ArrayBuffer | null = null;
  const t0 = performance.now();
  const per = rowSize(task.model.inputShape);
  if (task.input.kind === 'images') {
    const pre = task.model.preprocess;
    if (!pre) throw new Error('image batch without preprocessing settings');
    const files = task.input.files;
    // sharp (libvips) is loaded by the first image batch: tensor jobs never need it
    const { decodedLength, decodeImagesInto } = await import('../preprocess/image-decode.js');
    const len = decodedLength(pre);
    if (len !== per) {
      files.forEach((_, i) => errors.push({ index: i, stage: 'decode', message: `decoded to ${len} values, expected ${per}` }));
      input = new Float32Array(0);
    } else {
      // decoded straight into the batch, in a buffer this thread reuses: a fresh 19 MB array per
      // batch (plus one per image) cost more in page faults and GC than the copy itself
      const batch = thread.scratchFor(files.length * per);
      const failed = new Map((await decodeImagesInto(files, pre, batch)).map((f) => [f.index, f.message]));
      input = keepGoodRows(
        batch,
        files.length,
        per,
        (i) => {
          const message = failed.get(i);
          return message === undefined ? null : { stage: 'decode', message };
        },
        ok,
        errors,
      );
    }
  } else if (task.input.kind === 'rows') {
    // laid out as one batch in this thread's buffer, then checked like a contiguous batch
    const rows = task.input.rows;
    const batch = thread.scratchFor(rows.length * per);
    rows.forEach((r, i) => {
      if (r.length !== per) throw new Error(`tensor row ${i} has ${r.length} values, expected ${per}`);
      batch.set(r, i * per);
    });
    input = keepGoodRows(batch, rows.length, per, (i) => badInput(batch, i * per, per), ok, errors);
  } else {
    const data = task.input.data;
    if (data.byteOffset === 0 && data.buffer instanceof ArrayBuffer && data.byteLength === data.buffer.byteLength) handBack = data.buffer;
    const rows = data.length / per;
    if (!Number.isInteger(rows)) throw new Error(`tensor batch of ${data.length} values is not a multiple of the row size ${per}`);
    // the good rows go first, in the batch's own buffer
    input = keepGoodRows(data, rows, per, (i) => badInput(data, i * per, per), ok, errors);
  }
  const t1 = performance.now();

  let taps: Record<string, TapOutput> = {};
  if (ok.length > 0) {
    // images and tensor rows feed the model's one input, by its name, in the batch buffer itself
    taps = await runner.run(singleFloatInput(runner, input, task.model.inputShape));
    // features that are NaN/Inf are useless downstream; flag them as error rows
    const bad = new Set<number>();
    for (const out of Object.values(taps)) for (let r = 0; r < ok.length; r++) if (rowNotFinite(out, r)) bad.add(r);
    if (bad.size > 0) {
      const keep = ok.map((_, r) => r).filter((r) => !bad.has(r));
      for (const r of bad) errors.push({ index: ok[r]!, stage: 'features', message: 'features contain NaN or Inf' });
      for (const k of Object.keys(taps)) taps[k] = dropRows(taps[k]!, keep);
      ok = keep.map((r) => ok[r]!);
    }
  }
  const t2 = performance.now();
  errors.sort((a, b) => a.index - b.index);

  // a backend may hand back a view of its input as a tap (a tap on the model's input): copy it,
  // since this thread's batch buffer is reused and a tensor batch's buffer is handed back
  const owned: Record<string, TapOutput> = {};
  for (const [k, v] of Object.entries(taps)) {
    const reused = thread.isScratch(v.data.buffer) || v.data.buffer === handBack;
    owned[k] = { data: reused ? v.data.slice() : ownBuffer(v.data), shape: v.shape };
  }
  const result: BatchResult = {
    ok,
    errors,
    taps: owned,
    backend: runner.backend,
    layout: runner.layout,
    decodeMs: t1 - t0,
    forwardMs: t2 - t1,
    ...(handBack ? { input: handBack } : {}),
  };
  return moved(result, handBack ? [handBack] : []);
}
