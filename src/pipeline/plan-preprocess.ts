import { DEFAULTS } from '../config/defaults.js';
import { JobConfigError } from '../config/errors.js';
import type { ResolvedPreprocess } from '../config/resolved.js';
import type { JobConfig, PreprocessConfig } from '../config/schema.js';
import { formatInput, formatInputs } from '../models/model-inputs.js';
import type { ModelDescription } from '../models/types.js';
import type { RowShape } from '../sources/types.js';

/** Image preprocessing with every default decided from the model's input, checked against it. */
function resolvePreprocess(pre: PreprocessConfig | undefined, desc: ModelDescription): ResolvedPreprocess {
  const shape = desc.inputShape;
  if (shape.length !== 4) {
    throw new JobConfigError(`model.uri: image sources need a model with one 4-d image input, but its input shape is ${JSON.stringify(shape)}`, ['model.uri']);
  }
  const modelLayout = desc.inputLayout;
  const [h, w, c] = modelLayout === 'nhwc' ? [shape[1], shape[2], shape[3]] : [shape[2], shape[3], shape[1]];
  const p = pre ?? { fit: DEFAULTS.job.fit };
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
export function checkFedInput(desc: ModelDescription, uri: string): void {
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
 * What image and tensor rows feed the model: for images (`rowShape` null), the preprocessing
 * with every default decided, and the per-row input shape it makes; for tensor rows, their
 * shape, checked against the model's row shape (a table's flat list column may feed any fixed
 * row shape of as many values).
 */
export function resolveFedInput(
  job: JobConfig,
  desc: ModelDescription,
  /** what the source says of its rows (sources/types.ts) */
  rowShape: RowShape,
  source: { type: string; isTable: boolean },
): { preprocess: ResolvedPreprocess | null; inputShape: number[] } {
  // no row to tell what the rows are (an empty JSONL file): the job and the model say it
  const rows = rowShape === 'unknown' ? (takesImages(job, desc) ? null : 'tensor') : rowShape;
  if (rows === null) {
    const preprocess = resolvePreprocess(job.preprocess, desc);
    const [h, w] = preprocess.size;
    return { preprocess, inputShape: preprocess.layout === 'nhwc' ? [h, w, preprocess.channels] : [preprocess.channels, h, w] };
  }
  if (job.preprocess) {
    throw new JobConfigError(
      `preprocess: applies to image sources only; '${job.source.uri}' is a ${source.type} source whose rows go to the model as they are`,
      ['preprocess'],
    );
  }
  const modelRow = desc.inputShape.slice(1);
  // no row reaches the model: its own row shape stands in (a free axis as 1, since none is fed)
  if (rows === 'tensor') return { preprocess: null, inputShape: modelRow.map((d) => d ?? 1) };
  const matches = rows.length === modelRow.length && modelRow.every((d, i) => d === null || d === rows[i]);
  // a table's flat list column feeds a model of any fixed row shape with as many values
  const size = (s: ReadonlyArray<number | null>) => s.reduce<number>((a, b) => a * (b ?? NaN), 1);
  const flat = source.isTable && !matches && modelRow.every((d) => d !== null) && size(modelRow) === size(rows);
  if (!matches && !flat) {
    const field = source.isTable ? 'source.inputColumn' : 'source.uri';
    throw new JobConfigError(
      `${field}: rows have shape ${JSON.stringify(rows)}${source.isTable ? ` (${size(rows)} values)` : ''} but the model takes ${JSON.stringify(modelRow)} per row`,
      [field],
    );
  }
  return { preprocess: null, inputShape: matches ? rows : (modelRow as number[]) };
}
