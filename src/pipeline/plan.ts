import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatInput, formatInputs } from '../models/model-inputs.js';
import { backendMismatch, describeModel, runtimeFor, threadModule, type RuntimeRegistry } from '../models/registry.js';
import { reduceProblem } from '../models/reductions.js';
import type { ModelDescription } from '../models/types.js';
import { createSink } from '../storage/registry.js';
import { createSource, inferSourceType } from '../sources/registry.js';
import type { RowShape, Source } from '../sources/types.js';
import { JobConfigError } from '../config/errors.js';
import type { ResolvedJob, ResolvedPreprocess, ResolvedTap, ResolvedText } from '../config/resolved.js';
import type { JobConfig, PreprocessConfig, TapConfig } from '../config/schema.js';
import { absoluteUri, defaultColumnName } from '../config/names.js';
import { DEFAULTS } from '../config/defaults.js';
import { nearestNames } from '../types/did-you-mean.js';
import { FieldError, LayertapError } from '../types/errors.js';
import { defaultRegistries, type Registries } from './registries.js';

/** Options for {@link resolveJob}. */
export interface ResolveOptions {
  /** base for relative paths in the job file. @defaultValue process.cwd() */
  cwd?: string;
  /** what the job's source type, sink scheme and format, and model runtime are looked up in. @defaultValue the built-ins */
  registries?: Registries;
}

/** A tap's layer as a pattern: `*` is any run of characters other than '.' and '/'. */
function globPattern(layer: string): RegExp {
  return new RegExp(
    `^${layer
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^./]*')}$`,
  );
}

/** Each tap as the concrete layers it names: a glob becomes one tap per matching layer, in the model's order. */
function expandGlobs(taps: TapConfig[], desc: ModelDescription, modelUri: string): Array<{ tap: TapConfig; i: number }> {
  return taps.flatMap((tap, i) => {
    if (!tap.layer.includes('*')) {
      if (tap.as?.includes('{name}'))
        throw new JobConfigError(`taps[${i}].as: {name} stands for each layer a glob matches, but layer '${tap.layer}' is not a glob`, [`taps[${i}].as`]);
      return [{ tap, i }];
    }
    if (tap.as !== undefined && !tap.as.includes('{name}')) {
      throw new JobConfigError(
        `taps[${i}].as: '${tap.as}' names one column, but layer '${tap.layer}' is a glob; use {name} for each matched layer's name, e.g. "{name}_${tap.reduce}"`,
        [`taps[${i}].as`],
      );
    }
    const re = globPattern(tap.layer);
    const matches = [...new Set(desc.layerNames.filter((n) => re.test(n)))];
    if (matches.length === 0) {
      throw new JobConfigError(`taps[${i}].layer: the pattern '${tap.layer}' matches no layer; \`layertap layers ${modelUri}\` lists them`, [
        `taps[${i}].layer`,
      ]);
    }
    return matches.map((layer) => {
      const name = defaultColumnName({ layer, at: tap.at });
      return { tap: { ...tap, layer, ...(tap.as !== undefined ? { as: tap.as.replaceAll('{name}', name) } : {}) }, i };
    });
  });
}

/** A model with at most this many layers has them listed in an unknown-layer error; a larger one gets the nearest names. */
const LISTED_LAYERS = 12;

/** `a`, `a or b`, `a, b or c`, each quoted. */
function orList(names: string[]): string {
  const q = names.map((n) => `'${n}'`);
  return q.length > 1 ? `${q.slice(0, -1).join(', ')} or ${q.at(-1)}` : (q[0] ?? '');
}

/** What to say after "unknown layer": the nearest names (up to 3), and the whole list, or the command that prints it. */
function unknownLayerHint(layer: string, names: readonly string[], modelUri: string): string {
  const near = nearestNames(layer, names, 3);
  const guess = near.length ? ` (did you mean ${orList(near)}?)` : '';
  if (names.length <= LISTED_LAYERS) return `${guess}; layers are: ${names.join(', ')}`;
  return `${guess}; \`layertap layers ${modelUri}\` lists them`;
}

function resolveTaps(taps: TapConfig[], desc: ModelDescription, text: boolean, modelUri: string): ResolvedTap[] {
  const known = new Set(desc.layerNames);
  const seen = new Map<string, number>();
  return expandGlobs(taps, desc, modelUri).map(({ tap, i }) => {
    if (!known.has(tap.layer)) {
      throw new JobConfigError(`taps[${i}].layer: unknown layer '${tap.layer}'${unknownLayerHint(tap.layer, desc.layerNames, modelUri)}`, [`taps[${i}].layer`]);
    }
    try {
      // a listed name that still cannot be tapped, e.g. an ONNX module returning several tensors
      desc.checkTap?.(tap.layer, tap.at);
    } catch (err) {
      throw new JobConfigError(`taps[${i}].layer: ${(err as Error).message}`, [`taps[${i}].layer`]);
    }
    const problem = reduceProblem(tap, text);
    if (problem !== null) throw new JobConfigError(`taps[${i}].${problem.field}: ${problem.message}`, [`taps[${i}].${problem.field}`]);
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

const TEXT_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;

/** A model that takes token ids is fed text. */
function takesText(desc: ModelDescription): boolean {
  return desc.inputs.some((i) => i.name === 'input_ids');
}

/** What makes text rows token ids for this model: the tokenizer, maxLength, prefix and the inputs to fill. */
async function resolveText(job: JobConfig, desc: ModelDescription, modelUri: string, cwd: string): Promise<ResolvedText> {
  const inputs = desc.inputs.map((input): ResolvedText['inputs'][number] => {
    const name = TEXT_INPUTS.find((n) => n === input.name);
    if (name === undefined) {
      throw new JobConfigError(
        `model.uri: the model takes an input '${input.name}' (${formatInput(input)}) that layertap cannot fill from text; it fills ${TEXT_INPUTS.join(', ')}`,
        ['model.uri'],
      );
    }
    const dtype = input.dtype === 'int64' || input.dtype === 'int32' ? input.dtype : null;
    if (dtype === null) {
      throw new JobConfigError(`model.uri: input ${formatInput(input)}: token inputs must be int64 or int32`, ['model.uri']);
    }
    return { name, dtype };
  });
  const pre = job.preprocess;
  const image = pre ? (['size', 'range', 'mean', 'std', 'layout', 'channels'] as const).find((k) => pre[k] !== undefined) : undefined;
  if (image !== undefined) throw new JobConfigError(`preprocess.${image}: applies to images; a text model takes maxLength and prefix`, [`preprocess.${image}`]);
  const tokenizer = job.model.tokenizer !== undefined ? absoluteUri(job.model.tokenizer, cwd) : join(dirname(modelUri), 'tokenizer.json');
  const configFile = join(dirname(tokenizer), 'tokenizer_config.json');
  const tokenizerConfig = existsSync(configFile) ? configFile : undefined;
  const hash = createHash('sha256');
  const read = (file: string): Record<string, unknown> => {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new JobConfigError(`model.tokenizer: cannot read ${file}: ${(err as Error).message}`, ['model.tokenizer']);
    }
    hash.update(bytes);
    try {
      const v: unknown = JSON.parse(bytes.toString('utf8'));
      return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
    } catch (err) {
      throw new JobConfigError(`model.tokenizer: tokenizer ${file} is not a tokenizer file: ${(err as Error).message}`, ['model.tokenizer']);
    }
  };
  const json = read(tokenizer);
  const config = tokenizerConfig !== undefined ? read(tokenizerConfig) : {};
  // a placeholder such as 1e30 means the tokenizer sets no limit
  const fromConfig = typeof config['model_max_length'] === 'number' && config['model_max_length'] <= 1_000_000 ? config['model_max_length'] : undefined;
  const truncation = json['truncation'] as { max_length?: unknown } | null | undefined;
  const fromTokenizer = typeof truncation?.max_length === 'number' ? truncation.max_length : undefined;
  const positions = desc.tokenTables?.positions;
  const wanted = pre?.maxLength ?? fromConfig ?? fromTokenizer ?? DEFAULTS.job.maxLength;
  if (pre?.maxLength !== undefined && positions !== undefined && pre.maxLength > positions) {
    throw new JobConfigError(`preprocess.maxLength: ${pre.maxLength} tokens, but the model's position table has ${positions}`, ['preprocess.maxLength']);
  }
  // a default longer than the model's position table is cut to it
  const maxLength = positions !== undefined ? Math.min(wanted, positions) : wanted;
  const text: ResolvedText = {
    tokenizer,
    ...(tokenizerConfig !== undefined ? { tokenizerConfig } : {}),
    tokenizerHash: hash.digest('hex'),
    maxLength,
    prefix: pre?.prefix ?? '',
    inputs,
  };
  // the tokenizer library is loaded by text jobs only
  const { TextTokenizer, TokenizerFileError } = await import('../preprocess/tokenize.js');
  let maxId: number;
  try {
    // a tokenizer that does not load fails the job here, before any work
    maxId = new TextTokenizer(text).maxId();
  } catch (err) {
    if (err instanceof TokenizerFileError) throw new JobConfigError(`model.tokenizer: ${err.message}`, ['model.tokenizer']);
    throw err;
  }
  const vocabulary = desc.tokenTables?.vocabulary;
  if (vocabulary !== undefined && maxId >= vocabulary) {
    throw new JobConfigError(
      `model.tokenizer: tokenizer ${tokenizer} gives ids up to ${maxId}, but the model's embedding table (indexed by input_ids) has ${vocabulary} rows; is it the model's own tokenizer?`,
      ['model.tokenizer'],
    );
  }
  return text;
}

function resolvePreprocess(pre: PreprocessConfig | undefined, desc: ModelDescription): ResolvedPreprocess {
  const shape = desc.inputShape;
  if (shape.length !== 4) {
    throw new JobConfigError(`model.uri: image sources need a model with one 4-d image input, but its input shape is ${JSON.stringify(shape)}`, ['model.uri']);
  }
  const modelLayout = desc.inputLayout;
  const [h, w, c] = modelLayout === 'nhwc' ? [shape[1], shape[2], shape[3]] : [shape[2], shape[3], shape[1]];
  const p = pre ?? { fit: 'cover' as const };
  const size = p.size ?? (h && w ? ([h, w] as [number, number]) : undefined);
  if (!size) {
    throw new JobConfigError(`preprocess.size: the model's input has no fixed size (${JSON.stringify(shape)}); set preprocess.size: [height, width]`, [
      'preprocess.size',
    ]);
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

/** sha256 of model content + preprocessing (for text: the tokenizer's hash, maxLength, prefix) + taps, as 16 hex characters. */
export function computeFingerprint(contentHash: string, preprocess: ResolvedPreprocess | null, taps: ResolvedTap[], text?: ResolvedText): string {
  const canonical = JSON.stringify({
    model: contentHash,
    preprocess,
    // only for text, so that the fingerprints of image and tensor jobs stay what they were
    ...(text ? { text: [text.tokenizerHash, text.maxLength, text.prefix] } : {}),
    // axes only when set, so that the fingerprints of jobs without them stay what they were
    taps: taps.map((t) => [t.layer, t.at, t.as, t.reduce, t.normalize, t.dtype, ...(t.axes ? [t.axes] : [])]),
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

async function describe(uri: string, runtimes: RuntimeRegistry): Promise<ModelDescription> {
  try {
    return await describeModel(uri, runtimes);
  } catch (err) {
    if (err instanceof JobConfigError) throw err;
    throw new JobConfigError(`model.uri: ${(err as Error).message}`, ['model.uri']);
  }
}

/**
 * Whether rows that no source row describes would be images: the job preprocesses images, or
 * the model's one input is 4-d with 1 or 3 channels (or a free channel axis), as an image fills it.
 */
function takesImages(job: JobConfig, desc: ModelDescription): boolean {
  if (job.preprocess !== undefined) return true;
  const shape = desc.inputShape;
  if (shape.length !== 4) return false;
  const c = desc.inputLayout === 'nhwc' ? shape[3] : shape[1];
  return c === null || c === undefined || c === 1 || c === 3;
}

/** Image and tensor sources feed the model one float32 input of a declared shape. */
function checkFedInput(desc: ModelDescription, uri: string): void {
  const [input, ...more] = desc.inputs;
  const fail = (what: string) => new JobConfigError(`model.uri: '${uri}' ${what}`, ['model.uri']);
  if (input === undefined || more.length > 0) {
    throw fail(
      `has ${desc.inputs.length} inputs (${formatInputs(desc.inputs)}); image and tensor sources feed a model with one float32 input, ` +
        'and text feeds a model that takes input_ids',
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
  const { sources, sinks, formats, runtimes } = opts.registries ?? defaultRegistries();
  const sourceUri = absoluteUri(job.source.uri, cwd);
  const modelUri = absoluteUri(job.model.uri, cwd);
  const sinkUri = absoluteUri(job.sink.uri, cwd);
  let mismatch: string | null;
  try {
    mismatch = backendMismatch(job.model.uri, job.model.backend, runtimeFor(modelUri, runtimes), runtimes);
    // the pool threads must be able to import the runtime, or the job would fail in them
    threadModule(modelUri, runtimes);
  } catch (err) {
    throw configError(err, 'model.uri');
  }
  if (mismatch !== null) throw new JobConfigError(`model.backend: ${mismatch}`, ['model.backend']);
  // an unknown format, a missing bucket or an unwritable sink fails here, before any work
  const sink = { ...setFields(job.sink), uri: sinkUri };
  try {
    formats.get(sink.format);
    await (await createSink(sink, sinks)).check(job.name);
  } catch (err) {
    throw configError(err, 'sink.uri');
  }

  let type: string;
  try {
    type = job.source.type ?? inferSourceType(sourceUri, sources);
    sources.get(type);
  } catch (err) {
    throw configError(err, 'source.uri');
  }
  // a kind that takes an input column reads its rows from a table
  const isTable = sources.get(type).fields.includes('inputColumn');
  const desc = await describe(modelUri, runtimes);
  const text = takesText(desc) ? await resolveText(job, desc, modelUri, cwd) : undefined;
  if (!text) {
    checkFedInput(desc, job.model.uri);
    const textField = job.preprocess?.maxLength !== undefined ? 'maxLength' : job.preprocess?.prefix !== undefined ? 'prefix' : null;
    if (textField) throw new JobConfigError(`preprocess.${textField}: applies to text models (which take input_ids)`, [`preprocess.${textField}`]);
  }
  const taps = resolveTaps(job.taps, desc, text !== undefined, job.model.uri);

  let preprocess: ResolvedPreprocess | null = null;
  const finish = (textSpec: ResolvedText | undefined, inputShape: number[]): ResolvedJob => {
    const fingerprint = computeFingerprint(desc.contentHash, preprocess, taps, textSpec);
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
      ...(textSpec ? { text: textSpec } : {}),
      taps,
      batchSize: job.batchSize,
      shardSize: job.shardSize,
      sink,
      attempts: job.attempts,
      incremental: job.incremental ?? DEFAULTS.job.incremental,
      onShardFailure: job.onShardFailure,
      fingerprint,
      inputShape,
    };
  };
  let inputShape: number[];
  // a table's string column is text when the model takes token ids
  const sourceSpec = { ...setFields(job.source), uri: sourceUri, type, ...(text && isTable ? { text: true } : {}) };
  let source: Source | undefined;
  try {
    source = await createSource(sourceSpec, sources);
    await source.check();
  } catch (err) {
    await source?.close();
    throw configError(err, 'source.uri');
  }
  try {
    // null for images (folders, prefixes, image columns of tables), else the tensor rows' shape
    let rowShape: RowShape;
    if (text) {
      if (!isTable && type !== 'text')
        throw new JobConfigError(`source.uri: the model takes token ids; a ${type} source has no text (use a table with a string column, or a .txt file)`, [
          'source.uri',
        ]);
      return finish(text, []);
    }
    try {
      rowShape = await source.rowShape();
    } catch (err) {
      throw configError(err, 'source.uri');
    }
    // no row to tell what the rows are (an empty JSONL file): the job and the model say it
    if (rowShape === 'unknown') rowShape = takesImages(job, desc) ? null : 'tensor';
    if (rowShape === null) {
      preprocess = resolvePreprocess(job.preprocess, desc);
      const [h, w] = preprocess.size;
      inputShape = preprocess.layout === 'nhwc' ? [h, w, preprocess.channels] : [preprocess.channels, h, w];
    } else {
      if (job.preprocess) {
        throw new JobConfigError(`preprocess: applies to image sources only; '${job.source.uri}' is a ${type} source whose rows go to the model as they are`, [
          'preprocess',
        ]);
      }
      const modelRow = desc.inputShape.slice(1);
      if (rowShape === 'tensor') {
        // no row reaches the model: its own row shape stands in (a free axis as 1, since none is fed)
        inputShape = modelRow.map((d) => d ?? 1);
      } else {
        const row = rowShape;
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
    }
  } finally {
    await source.close();
  }
  return finish(undefined, inputShape);
}

/** The fields of a job section that are set: what travels in the resolved job. */
function setFields<T extends object>(section: T): T {
  return Object.fromEntries(Object.entries(section).filter(([, v]) => v !== undefined)) as T;
}

/**
 * A source/sink error as a JobConfigError naming its field (a FieldError's own), else `field`; a
 * store that does not answer (a retryable error) stays what it is: the job may be right.
 */
function configError(err: unknown, field: string): Error {
  if (err instanceof JobConfigError) return err;
  if (err instanceof LayertapError && err.retryable) return err;
  if (err instanceof FieldError) return new JobConfigError(err.message, [err.field]);
  return new JobConfigError(`${field}: ${err instanceof Error ? err.message : String(err)}`, [field]);
}
