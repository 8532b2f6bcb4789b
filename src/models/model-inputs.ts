import { ModelInputError } from './errors.js';
import type { ModelInputInfo, ModelInputs, ModelRunner, NamedTensor, TensorDtype } from './types.js';

const TENSOR_DTYPES: readonly string[] = ['float32', 'int32', 'int64'] satisfies TensorDtype[];

/** Whether a declared dtype is one a runner takes. */
export function isTensorDtype(dtype: string): dtype is TensorDtype {
  return TENSOR_DTYPES.includes(dtype);
}

/** `[batch, sequence]`, `[?, 3, 224, 224]`: fixed sizes, else the axis' symbolic name, else '?'. */
export function formatDims(info: Pick<ModelInputInfo, 'dims' | 'dimNames'>): string {
  if (info.dims === null) return '(no declared shape)';
  return `[${info.dims.map((d, i) => d ?? info.dimNames?.[i] ?? '?').join(', ')}]`;
}

/** An input's shape as ModelDescription.inputShape gives it: the batch axis null ([] when no shape is declared). */
export function inputShapeOf(input: ModelInputInfo): (number | null)[] {
  return (input.dims ?? []).map((d, i) => (i === 0 ? null : d));
}

/**
 * Image and tensor batches feed rows of shape `given` to a model's one float32 input: fails,
 * naming the model, when the input's declared dims (batch axis first; null when it declares
 * none, which takes any rows) do not take them.
 */
export function checkRowShape(source: string, dims: readonly (number | null)[] | null, given: readonly number[]): void {
  if (dims === null) return;
  const perRow = dims.slice(1);
  const fits = perRow.length === given.length && perRow.every((d, i) => d === null || d === given[i]);
  if (!fits) {
    throw new Error(`model ${source} takes rows of shape [${perRow.map((d) => d ?? '?').join(', ')}], but the job feeds [${given.join(', ')}]`);
  }
}

/** `input_ids: int64 [batch, sequence]` */
export function formatInput(info: ModelInputInfo): string {
  return `${info.name}: ${info.dtype} ${formatDims(info)}`;
}

/** Every input, as {@link formatInput}, comma-separated. */
export function formatInputs(inputs: readonly ModelInputInfo[]): string {
  return inputs.map(formatInput).join(', ');
}

const ARRAY_OF: Record<TensorDtype, string> = { float32: 'Float32Array', int32: 'Int32Array', int64: 'BigInt64Array' };

function holdsDtype(t: NamedTensor): boolean {
  switch (t.dtype) {
    case 'float32':
      return t.data instanceof Float32Array;
    case 'int32':
      return t.data instanceof Int32Array;
    case 'int64':
      return t.data instanceof BigInt64Array;
    default:
      return false;
  }
}

/** Whether `dims` fit what the model declares: same rank, and every fixed axis but the batch axis equal. */
function fitsDims(declared: ModelInputInfo['dims'], dims: readonly number[]): boolean {
  if (declared === null) return true;
  // the batch axis is not checked: a graph exported with a fixed batch runs in chunks of it
  return declared.length === dims.length && declared.every((d, i) => i === 0 || d === null || d === dims[i]);
}

/**
 * Check a forward pass's inputs against the model's and return the batch size they share.
 * Throws a {@link ModelInputError} naming the input (and listing the model's inputs) when one
 * is missing or unknown, or has a dtype, dims or length the model does not take.
 */
export function checkInputs(inputs: ModelInputs, expected: readonly ModelInputInfo[], source: string): number {
  const takes = `model ${source} takes ${formatInputs(expected)}`;
  const fail = (input: string, what: string): ModelInputError => new ModelInputError(input, `run(): ${what}`, expected);
  const known = new Set(expected.map((i) => i.name));
  for (const name of Object.keys(inputs)) {
    if (!known.has(name)) throw fail(name, `'${name}' is not an input of the model; ${takes}`);
  }
  let batch: { name: string; rows: number } | null = null;
  for (const info of expected) {
    // own properties only: an input named like an Object method ('constructor') is still just a name
    const t = Object.hasOwn(inputs, info.name) ? inputs[info.name] : undefined;
    if (t === undefined) throw fail(info.name, `input '${info.name}' is missing; ${takes}`);
    if (t.dtype !== info.dtype) {
      throw fail(info.name, `input '${info.name}' is ${t.dtype}, but the model takes ${formatInput(info)}`);
    }
    if (!holdsDtype(t)) {
      throw fail(info.name, `input '${info.name}' is ${t.dtype}, so its data must be a ${ARRAY_OF[t.dtype]}, not a ${t.data.constructor.name}`);
    }
    const dims = `[${t.dims.join(', ')}]`;
    if (t.dims.length === 0 || !t.dims.every((d) => Number.isInteger(d) && d >= 0) || (t.dims[0] ?? 0) < 1) {
      throw fail(info.name, `input '${info.name}' has dims ${dims}; it needs a batch axis of at least one row, then the row's axes`);
    }
    if (!fitsDims(info.dims, t.dims)) {
      throw fail(info.name, `input '${info.name}' has dims ${dims}, but the model takes ${formatInput(info)}`);
    }
    const size = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== size) {
      throw fail(info.name, `input '${info.name}' has dims ${dims} (${size} values) but holds ${t.data.length} values`);
    }
    const rows = t.dims[0] ?? 0;
    if (batch !== null && rows !== batch.rows) {
      throw fail(info.name, `inputs '${batch.name}' and '${info.name}' have ${batch.rows} and ${rows} rows; every input has the same rows`);
    }
    batch ??= { name: info.name, rows };
  }
  if (batch === null) throw new ModelInputError('', `run(): model ${source} declares no inputs to feed`, expected);
  return batch.rows;
}

/**
 * The inputs of a model that takes one float32 input (images, tensor rows): `data` laid out as
 * [rows, ...rowShape] under the input's name.
 *
 * @example
 * await runner.run(singleFloatInput(runner, pixels, [3, 224, 224])); // pixels.length = rows * 3 * 224 * 224
 */
export function singleFloatInput(runner: Pick<ModelRunner, 'inputs'>, data: Float32Array, rowShape: readonly number[]): ModelInputs {
  const [input, ...more] = runner.inputs;
  if (input === undefined || more.length > 0) {
    throw new ModelInputError(
      input?.name ?? '',
      `the model takes ${runner.inputs.length} inputs (${formatInputs(runner.inputs)}); a batch of images or tensor rows feeds one float32 input`,
      runner.inputs,
    );
  }
  const per = rowShape.reduce((a, b) => a * b, 1);
  if (per === 0 || data.length % per !== 0) {
    throw new ModelInputError(input.name, `a batch of ${data.length} values is not whole rows of [${rowShape.join(', ')}] (${per} values each)`, runner.inputs);
  }
  return { [input.name]: { dtype: 'float32', dims: [data.length / per, ...rowShape], data } };
}

/** A tensor of zeros (shape probes, the padding of a fixed-batch chunk). */
export function zeros(dtype: TensorDtype, dims: number[]): NamedTensor {
  const size = dims.reduce((a, b) => a * b, 1);
  switch (dtype) {
    case 'float32':
      return { dtype, dims, data: new Float32Array(size) };
    case 'int32':
      return { dtype, dims, data: new Int32Array(size) };
    case 'int64':
      return { dtype, dims, data: new BigInt64Array(size) };
  }
}

/**
 * Rows [start, start + count) of a batch, as a view of its buffer; with `rows` > count, a copy
 * padded with zero rows to `rows` rows (a chunk of a graph exported with a fixed batch size).
 */
export function sliceRows(t: NamedTensor, start: number, count: number, rows = count): NamedTensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const [from, to, size] = [start * per, (start + count) * per, rows * per];
  const dims = [rows, ...t.dims.slice(1)];
  // one case per array type: TypedArray.set does not take the union of them
  switch (t.dtype) {
    case 'float32':
      return { dtype: t.dtype, dims, data: padTo(t.data.subarray(from, to), size, (n) => new Float32Array(n)) };
    case 'int32':
      return { dtype: t.dtype, dims, data: padTo(t.data.subarray(from, to), size, (n) => new Int32Array(n)) };
    case 'int64':
      return { dtype: t.dtype, dims, data: padTo(t.data.subarray(from, to), size, (n) => new BigInt64Array(n)) };
  }
}

/** `part` itself when it has `size` values, else a copy of it followed by zeros up to `size`. */
function padTo<A extends Float32Array | Int32Array | BigInt64Array>(part: A, size: number, make: (n: number) => A): A {
  if (part.length === size) return part;
  const out = make(size);
  (out as { set(a: A): void }).set(part);
  return out;
}

/** A tensor's values as float32: the tensor's own array when it is one (a tap on a model input reads the fed values). */
export function asFloat32(t: NamedTensor): Float32Array {
  switch (t.dtype) {
    case 'float32':
      return t.data;
    case 'int32':
      return Float32Array.from(t.data);
    case 'int64':
      return Float32Array.from(t.data, (v) => Number(v));
  }
}
