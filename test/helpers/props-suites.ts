// The jobs the property tests run: a dataset kind, a model and several taps per job, in a few
// variants (ONNX or TF.js; text with or without a ragged token column).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobInput } from '../../src/config/index.js';
import { readNpy } from '../../src/sources/npy.js';
import { maxAbsDiff, nhwcToNchw, SEED } from './index.js';
import type { Reference } from './props-check.js';
import {
  imageKind,
  imagePool,
  SEED_ONNX,
  SEED_TFJS,
  tensorKind,
  tensorPool,
  TEXT_MODEL,
  textKind,
  TEXT_FIXTURE,
  textPool,
  type DatasetKind,
} from './props-datasets.js';

/** One kind of job, in variants that change the model or the taps (and so the fingerprint). */
export interface Suite {
  label: 'text' | 'tensor' | 'image';
  variants: readonly string[];
  kind(variant: string): DatasetKind;
  model(variant: string): string;
  taps(variant: string): NonNullable<JobInput['taps']>;
  /** the variant with the same source and no ragged (`reduce: none` token) tap */
  unragged(variant: string): string;
}

/** The tap columns of a variant. */
export function columnsOf(suite: Suite, variant: string): string[] {
  return suite.taps(variant).map((t) => t.as!);
}

/** Text: pooled taps of several layers and kinds (mean, first token, last real token, the pooler, an L2-normalised float16 max), plus a ragged `reduce: none` token column in the `tokens` variants. */
const TEXT_TAPS = [
  { layer: 'encoder.layer.3', reduce: 'mean', as: 'mean' },
  { layer: 'encoder.layer.1', reduce: 'cls', as: 'cls' },
  { layer: 'encoder.layer.2', reduce: 'last', as: 'last' },
  { layer: 'pooler', as: 'pooler' },
  { layer: 'embeddings', reduce: 'max', normalize: 'l2', dtype: 'float16', as: 'emb_max16' },
] as const;
const TOKENS_TAP = { layer: 'encoder.layer.3', reduce: 'none', as: 'tokens' } as const;

/** The seed model: the classifier's input (64-d), a pooled conv layer, an unpooled one, and an L2-normalised float16 dense layer. */
const SEED_TAPS = [
  { layer: 'linear_class.0', at: 'input', as: 'hidden' },
  { layer: 'conv_32.1', reduce: 'mean', as: 'conv32' },
  { layer: 'conv_16.2', as: 'conv16' },
  { layer: 'linear_1.1', normalize: 'l2', dtype: 'float16', as: 'dense16' },
] as const;

const seedModel = (variant: string) => (variant === 'onnx' ? SEED_ONNX : SEED_TFJS);

/** The three suites, with their pools made. */
export async function makeSuites(): Promise<Record<Suite['label'], Suite>> {
  const [sentences, tensors, images] = await Promise.all([textPool(), tensorPool(), imagePool()]);
  const text = { jsonl: textKind(sentences, 'jsonl'), parquet: textKind(sentences, 'parquet') };
  const image = imageKind(images);
  const tensor = { onnx: tensorKind(tensors, 'nchw'), tfjs: tensorKind(tensors, 'nhwc') };
  return {
    // '<source format>/<taps>'
    text: {
      label: 'text',
      variants: ['jsonl/pooled', 'jsonl/tokens', 'parquet/pooled', 'parquet/tokens'],
      kind: (v) => (v.startsWith('parquet/') ? text.parquet : text.jsonl),
      model: () => TEXT_MODEL,
      taps: (v) => (v.endsWith('/tokens') ? [...TEXT_TAPS, TOKENS_TAP] : [...TEXT_TAPS]),
      unragged: (v) => v.replace(/\/tokens$/, '/pooled'),
    },
    tensor: {
      label: 'tensor',
      variants: ['onnx', 'tfjs'],
      kind: (v) => (v === 'onnx' ? tensor.onnx : tensor.tfjs),
      model: seedModel,
      taps: () => [...SEED_TAPS],
      unragged: (v) => v,
    },
    image: {
      label: 'image',
      variants: ['onnx', 'tfjs'],
      kind: () => image,
      model: seedModel,
      taps: () => [...SEED_TAPS],
      unragged: (v) => v,
    },
  };
}

/** How one run is cut up and written. */
export interface RunShape {
  batchSize: number;
  shardSize: number;
  format: 'arrow' | 'parquet';
}

/** The job of `suite` in `variant` over `source`, into `sink`. */
export function jobInput(suite: Suite, variant: string, source: JobInput['source'], shape: RunShape, sink: string, incremental = false): JobInput {
  return {
    name: `props-${suite.label}`,
    source,
    model: { uri: suite.model(variant) },
    taps: suite.taps(variant),
    batchSize: shape.batchSize,
    shardSize: shape.shardSize,
    incremental,
    // nothing here fails now and then: a failure is the finding, and retries with backoff would only slow its shrinking
    attempts: 1,
    sink: { uri: sink, format: shape.format },
  };
}

const npyRows = async (file: string, n: number) => {
  const { data } = await readNpy(file);
  const per = data.length / n;
  return Array.from({ length: n }, (_, i) => data.subarray(i * per, (i + 1) * per));
};

/**
 * The largest difference between a reference and PyTorch's forward hooks, over the pool entries
 * that are the fixtures' own inputs (the ten sentences; the seed model's three tensors), so that
 * the rows are held to features that are right, not only alike. Null for images, which have no capture.
 */
export async function pytorchDifference(suite: Suite, variant: string, ref: Reference): Promise<number | null> {
  if (suite.label === 'image') return null;
  let worst = 0;
  const compare = (got: Float32Array[] | undefined, want: ArrayLike<number>, what: string) => {
    if (!got) throw new Error(`the reference has no ${what}`);
    const flat = Float32Array.from(got.flatMap((v) => [...v]));
    worst = Math.max(worst, maxAbsDiff(flat, want));
  };
  if (suite.label === 'text') {
    const expected = join(TEXT_FIXTURE, 'expected');
    const captures = { mean: 'encoder.layer.3__mean', cls: 'encoder.layer.1__cls', last: 'encoder.layer.2__last', pooler: 'pooler__output' };
    for (const [col, file] of Object.entries(captures)) {
      const rows = await npyRows(join(expected, `${file}.npy`), 10);
      rows.forEach((want, i) => compare(ref.features.get(i)?.[col], want, `${col} of sentence ${i}`));
    }
    if (columnsOf(suite, variant).includes('tokens')) {
      const { lengths } = JSON.parse(await readFile(join(expected, 'tokens.json'), 'utf8')) as { lengths: number[] };
      const all = (await readNpy(join(expected, 'encoder.layer.3__tokens.npy'))).data;
      let at = 0;
      lengths.forEach((n, i) => {
        compare(ref.features.get(i)?.['tokens'], all.subarray(at * 32, (at + n) * 32), `tokens of sentence ${i}`);
        at += n;
      });
    }
  } else if (suite.label === 'tensor') {
    const expected = join(SEED, 'expected');
    const hidden = await npyRows(join(expected, 'linear_class.0__input.npy'), 3);
    const conv16 = await npyRows(join(expected, 'conv_16.2__output.npy'), 3);
    const conv32 = await npyRows(join(expected, 'conv_32.1__output.npy'), 3);
    for (let i = 0; i < 3; i++) {
      const f = ref.features.get(i);
      compare(f?.['hidden'], hidden[i]!, `hidden of tensor ${i}`);
      // TF.js lays features out NHWC, PyTorch NCHW
      const c16 = f?.['conv16']?.map((v) => (variant === 'tfjs' ? nhwcToNchw(v, 13, 13, 16) : v));
      compare(c16, conv16[i]!, `conv16 of tensor ${i}`);
      const mean = Float32Array.from({ length: 32 }, (_, c) => conv32[i]!.subarray(c * 121, (c + 1) * 121).reduce((a, b) => a + b, 0) / 121);
      compare(f?.['conv32'], mean, `conv32 of tensor ${i}`);
    }
  }
  return worst;
}
