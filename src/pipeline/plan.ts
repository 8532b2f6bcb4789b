import { createHash } from 'node:crypto';
import { describeModel, formatInput, formatInputs, isOnnxUri } from '../models/index.js';
import type { ModelDescription } from '../models/types.js';
import { createSink } from '../storage/index.js';
import { createSource, inferSourceType } from '../sources/index.js';
import { JobConfigError } from '../config/errors.js';
import type { ResolvedJob, ResolvedPreprocess, ResolvedTap } from '../config/resolved.js';
import type { S3Connection } from '../config/resolved.js';
import type { JobConfig, PreprocessConfig, SourceType, TapConfig } from '../config/schema.js';
import { absoluteUri, defaultColumnName } from '../config/names.js';
import { nearestNames } from '../types/did-you-mean.js';

/** Options for {@link resolveJob}. */
export interface ResolveOptions {
  /** base for relative paths in the job file. @defaultValue process.cwd() */
  cwd?: string;
}

function resolveTaps(taps: TapConfig[], desc: ModelDescription): ResolvedTap[] {
  const known = new Set(desc.layerNames);
  const seen = new Map<string, number>();
  return taps.map((tap, i) => {
    if (!known.has(tap.layer)) {
      const names = desc.layerNames;
      const near = nearestNames(tap.layer, names, 2);
      const list = names.length > 60 ? `${names.slice(0, 60).join(', ')}, ... (${names.length} in all; see 'layertap layers')` : names.join(', ');
      throw new JobConfigError(
        `taps[${i}].layer: unknown layer '${tap.layer}'${near.length ? ` (did you mean ${near.map((n) => `'${n}'`).join(' or ')}?)` : ''}; layers are: ${list}`,
        [`taps[${i}].layer`],
      );
    }
    try {
      // a listed name that still cannot be tapped, e.g. an ONNX module returning several tensors
      desc.checkTap?.(tap.layer, tap.at);
    } catch (err) {
      throw new JobConfigError(`taps[${i}].layer: ${(err as Error).message}`, [`taps[${i}].layer`]);
    }
    if (tap.axes !== undefined) {
      if (tap.reduce === 'none') {
        throw new JobConfigError(`taps[${i}].axes: axes are what reduce pools over; set reduce: mean or max, or remove axes`, [`taps[${i}].axes`]);
      }
      if (tap.axes.some((a, k) => k > 0 && a !== tap.axes![k - 1]! + 1)) {
        throw new JobConfigError(`taps[${i}].axes: must be consecutive and ascending, like [1] or [2, 3]; got [${tap.axes.join(', ')}]`, [`taps[${i}].axes`]);
      }
    }
    const as = tap.as ?? defaultColumnName(tap);
    if (as === 'id') throw new JobConfigError(`taps[${i}].as: 'id' is the row id column; choose another name`, [`taps[${i}].as`]);
    const prev = seen.get(as);
    if (prev !== undefined) {
      throw new JobConfigError(`taps[${i}].as: column '${as}' is also produced by taps[${prev}]; set a distinct 'as'`, [`taps[${i}].as`]);
    }
    seen.set(as, i);
    return { ...tap, as };
  });
}

function resolvePreprocess(pre: PreprocessConfig | undefined, desc: ModelDescription): ResolvedPreprocess {
  const shape = desc.inputShape;
  if (shape.length !== 4) {
    throw new JobConfigError(
      `model.uri: image sources need a model with one 4-d image input, but its input shape is ${JSON.stringify(shape)}`,
      ['model.uri'],
    );
  }
  const modelLayout = desc.inputLayout;
  const [h, w, c] = modelLayout === 'nhwc' ? [shape[1], shape[2], shape[3]] : [shape[2], shape[3], shape[1]];
  const p = pre ?? { fit: 'cover' as const };
  const size = p.size ?? (h && w ? ([h, w] as [number, number]) : undefined);
  if (!size) {
    throw new JobConfigError(`preprocess.size: the model's input has no fixed size (${JSON.stringify(shape)}); set preprocess.size: [height, width]`, ['preprocess.size']);
  }
  if (h && w && (size[0] !== h || size[1] !== w)) {
    throw new JobConfigError(`preprocess.size: [${size.join(', ')}] does not match the model's input size [${h}, ${w}]`, ['preprocess.size']);
  }
  const channels = p.channels ?? (c === 1 ? 1 : 3);
  if (c && c !== channels) {
    throw new JobConfigError(`preprocess.channels: ${channels} does not match the model's input channels (${c})`, ['preprocess.channels']);
  }
  const layout = p.layout ?? modelLayout;
  if (layout !== modelLayout) {
    throw new JobConfigError(`preprocess.layout: '${layout}' but the model takes '${modelLayout}'`, ['preprocess.layout']);
  }
  if (p.range && (p.mean || p.std)) {
    throw new JobConfigError('preprocess: give either range or mean/std, not both', ['preprocess.range']);
  }
  if ((p.mean === undefined) !== (p.std === undefined)) {
    throw new JobConfigError(`preprocess.${p.mean ? 'std' : 'mean'}: mean and std go together`, [`preprocess.${p.mean ? 'std' : 'mean'}`]);
  }
  let mean: number[];
  let std: number[];
  if (p.mean && p.std) {
    const fit = (v: number[], field: string) => {
      if (v.length === channels) return v;
      if (v.length === 1) return Array.from({ length: channels }, () => v[0]!);
      throw new JobConfigError(`preprocess.${field}: has ${v.length} values but the model takes ${channels} channel(s)`, [`preprocess.${field}`]);
    };
    mean = fit(p.mean, 'mean');
    std = fit(p.std, 'std');
  } else {
    const [a, b] = p.range ?? [0, 1];
    if (a === b) throw new JobConfigError('preprocess.range: the two ends must differ', ['preprocess.range']);
    // (x - mean) / std maps x = 0 to a and x = 1 to b
    mean = Array.from({ length: channels }, () => -a / (b - a));
    std = Array.from({ length: channels }, () => 1 / (b - a));
  }
  return { size, fit: p.fit, layout, channels, mean, std };
}

/** sha256 of model content + preprocessing + taps, as 16 hex characters. */
export function computeFingerprint(contentHash: string, preprocess: ResolvedPreprocess | null, taps: ResolvedTap[]): string {
  const canonical = JSON.stringify({
    model: contentHash,
    preprocess,
    // axes only when set, so that the fingerprints of jobs without them stay what they were
    taps: taps.map((t) => [t.layer, t.at, t.as, t.reduce, t.normalize, t.dtype, ...(t.axes ? [t.axes] : [])]),
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

async function describe(uri: string): Promise<ModelDescription> {
  try {
    return await describeModel(uri);
  } catch (err) {
    if (err instanceof JobConfigError) throw err;
    throw new JobConfigError(`model.uri: ${(err as Error).message}`, ['model.uri']);
  }
}

/** Image and tensor sources feed the model one float32 input of a declared shape. */
function checkFedInput(desc: ModelDescription, uri: string): void {
  const [input, ...more] = desc.inputs;
  const fail = (what: string) => new JobConfigError(`model.uri: '${uri}' ${what}`, ['model.uri']);
  if (input === undefined || more.length > 0) {
    throw fail(
      `has ${desc.inputs.length} inputs (${formatInputs(desc.inputs)}); image and tensor sources feed a model with one float32 input, ` +
        'and text sources (token ids) are not supported yet',
    );
  }
  if (input.dtype !== 'float32') {
    throw fail(`takes ${formatInput(input)}; image and tensor sources feed float32 values`);
  }
  if (input.dims === null || input.dims.length === 0) {
    throw fail(`declares no shape for its input '${input.name}'; image and tensor sources need [batch, ...row shape]`);
  }
}

/**
 * Check a validated job against its model and source and decide every default. Fails with a
 * {@link JobConfigError} naming the field before any work is done.
 */
export async function resolveJob(job: JobConfig, opts: ResolveOptions = {}): Promise<ResolvedJob> {
  const cwd = opts.cwd ?? process.cwd();
  const sourceUri = absoluteUri(job.source.uri, cwd);
  const modelUri = absoluteUri(job.model.uri, cwd);
  const sinkUri = absoluteUri(job.sink.uri, cwd);
  if (isOnnxUri(modelUri) ? !['onnx', 'auto'].includes(job.model.backend) : job.model.backend === 'onnx') {
    throw new JobConfigError(
      isOnnxUri(modelUri)
        ? `model.backend: '${job.model.backend}' runs TF.js models; '${job.model.uri}' is an ONNX model (backend: onnx or auto)`
        : `model.backend: 'onnx' runs .onnx models; '${job.model.uri}' is a TF.js model (backend: auto | tensorflow | wasm | cpu)`,
      ['model.backend'],
    );
  }
  // a missing bucket or an unwritable sink fails here, before any work
  const sink = { uri: sinkUri, format: job.sink.format, ...s3Connection(job.sink) };
  try {
    await createSink(sink).check();
  } catch (err) {
    throw configError(err, 'sink.uri');
  }

  let type: SourceType;
  try {
    type = job.source.type ?? (await inferSourceType(sourceUri));
  } catch (err) {
    throw configError(err, 'source.uri');
  }
  const desc = await describe(modelUri);
  checkFedInput(desc, job.model.uri);
  const taps = resolveTaps(job.taps, desc);

  let preprocess: ResolvedPreprocess | null = null;
  let inputShape: number[];
  const sourceSpec = {
    uri: sourceUri,
    type,
    ...(job.source.extensions ? { extensions: job.source.extensions } : {}),
    ...(job.source.idColumn ? { idColumn: job.source.idColumn } : {}),
    ...(job.source.inputColumn ? { inputColumn: job.source.inputColumn } : {}),
    ...(job.source.maxLineBytes !== undefined ? { maxLineBytes: job.source.maxLineBytes } : {}),
    ...(job.source.maxRowBytes !== undefined ? { maxRowBytes: job.source.maxRowBytes } : {}),
    ...s3Connection(job.source),
  };
  let source;
  try {
    source = createSource(sourceSpec);
    await source.check();
  } catch (err) {
    await source?.close();
    throw configError(err, 'source.uri');
  }
  const isTable = type === 'arrow' || type === 'parquet' || type === 'jsonl';
  try {
    // tables hold tensor rows or images (bytes or paths); rowShape() says which
    let rowShape: number[] | null = null;
    if (type !== 'images') {
      try {
        rowShape = await source.rowShape();
      } catch (err) {
        throw configError(err, 'source.uri');
      }
    }
    if (rowShape === null) {
      preprocess = resolvePreprocess(job.preprocess, desc);
      const [h, w] = preprocess.size;
      inputShape = preprocess.layout === 'nhwc' ? [h, w, preprocess.channels] : [preprocess.channels, h, w];
    } else {
      if (job.preprocess) {
        throw new JobConfigError(`preprocess: applies to image sources only; '${job.source.uri}' is a ${type} source whose rows go to the model as they are`, ['preprocess']);
      }
      const row = rowShape;
      const modelRow = desc.inputShape.slice(1);
      const matches = row.length === modelRow.length && modelRow.every((d, i) => d === null || d === row[i]);
      // a table's flat list column feeds a model of any fixed row shape with as many values
      const size = (s: ReadonlyArray<number | null>) => s.reduce<number>((a, b) => a * (b ?? NaN), 1);
      const flat = isTable && !matches && modelRow.every((d) => d !== null) && size(modelRow) === size(row);
      if (!matches && !flat) {
        const field = isTable ? 'source.inputColumn' : 'source.uri';
        throw new JobConfigError(
          `${field}: rows have shape ${JSON.stringify(row)}${isTable ? ` (${size(row)} values)` : ''} but the model takes ${JSON.stringify(modelRow)} per row`,
          [field],
        );
      }
      inputShape = matches ? row : (modelRow as number[]);
    }
  } finally {
    await source.close();
  }

  const fingerprint = computeFingerprint(desc.contentHash, preprocess, taps);
  return {
    name: job.name,
    source: sourceSpec,
    model: {
      uri: modelUri,
      backend: job.model.backend,
      format: desc.format,
      ...(job.model.intraOpThreads !== undefined ? { intraOpThreads: job.model.intraOpThreads } : {}),
    },
    preprocess,
    taps,
    batchSize: job.batchSize,
    shardSize: job.shardSize,
    sink,
    attempts: job.attempts,
    incremental: job.incremental ?? false,
    onShardFailure: job.onShardFailure,
    fingerprint,
    inputShape,
  };
}

/** The S3 connection fields a job section sets. */
function s3Connection(section: S3Connection): S3Connection {
  return {
    ...(section.endpoint !== undefined ? { endpoint: section.endpoint } : {}),
    ...(section.region !== undefined ? { region: section.region } : {}),
    ...(section.forcePathStyle !== undefined ? { forcePathStyle: section.forcePathStyle } : {}),
  };
}

/** A source/sink error as a JobConfigError naming its field ('source.idColumn: ...'), else `field`. */
function configError(err: unknown, field: string): JobConfigError {
  if (err instanceof JobConfigError) return err;
  const m = (err as Error).message ?? String(err);
  const named = /^((?:source|sink)\.[A-Za-z]+):/.exec(m)?.[1];
  return new JobConfigError(named ? m : `${field}: ${m}`, [named ?? field]);
}
