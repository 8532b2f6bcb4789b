import type { Tensor } from '@tensorflow/tfjs-core';
import type { ResolvedTap } from '../config/resolved.js';
import { selectBackend } from './backend.js';
import { ModelInputError } from './errors.js';
import { checkInputs } from './model-inputs.js';
import { readModelFiles } from './model-files.js';
import { graphInputs, kerasInputs } from './model-json.js';
import { isOnnxUri } from './onnx-files.js';
import { loadOnnxRunner } from './onnx-runner.js';
import { tapOutput, tapTensor, type TapTensor } from './tap-features.js';
import { tapGraphModel, tapLayersModel, type TappedModel } from './tapped-model.js';
import { loadTfjs, type Tfjs } from './tfjs.js';
import type { ModelInputInfo, ModelInputs, ModelRunner, ModelSpec, NamedTensor, TapOutput } from './types.js';

const LAYOUT = 'nhwc';

function checkInputShape(source: string, model: (number | null)[], given: number[]): void {
  const perRow = model.slice(1);
  const fits = perRow.length === given.length && perRow.every((d, i) => d === null || d === given[i]);
  if (!fits) {
    throw new Error(
      `model ${source} takes rows of shape [${perRow.map((d) => d ?? '?').join(', ')}], ` +
        `but the job feeds [${given.join(', ')}]`,
    );
  }
}

class TfjsRunner implements ModelRunner {
  readonly layout = LAYOUT;
  private disposed = false;

  constructor(
    readonly backend: string,
    private readonly tfjs: Tfjs,
    private readonly model: TappedModel,
    private readonly taps: ResolvedTap[],
    /** names the model in errors */
    private readonly source: string,
    readonly inputs: readonly ModelInputInfo[],
  ) {}

  async run(inputs: ModelInputs): Promise<Record<string, TapOutput>> {
    if (this.disposed) throw new Error('run() on a disposed model runner');
    const rows = checkInputs(inputs, this.inputs, this.source);
    // the loaders take one-input models only; checkInputs made sure it is there
    const name = this.inputs[0]?.name ?? '';
    const fed = inputs[name] as NamedTensor;
    if (fed.dtype === 'int64') throw new ModelInputError(name, `run(): input '${name}' is int64, which TF.js has no tensors for`, this.inputs);
    const core = this.tfjs.core;
    // another runner in this thread may have switched the global backend
    if (core.engine().backendName !== this.backend) await core.setBackend(this.backend);

    const x = fed.dtype === 'float32' ? core.tensor(fed.data, fed.dims, 'float32') : core.tensor(fed.data, fed.dims, 'int32');
    let raw: Tensor[] = [];
    let features: TapTensor[] = [];
    try {
      raw = await this.model.forward(x);
      const shapes: number[][] = [];
      const tensors = core.tidy(() =>
        this.taps.map((tap, i) => {
          const activation = raw[this.model.outputIndex[i] ?? -1];
          if (activation === undefined) throw new Error(`tap '${tap.as}' produced no tensor`);
          const feature = tapTensor(core, activation, tap, rows, LAYOUT);
          shapes.push(feature.shape);
          return feature.tensor;
        }),
      );
      features = tensors.map((tensor, i) => ({ tensor, shape: shapes[i] ?? [] }));
      const out: Record<string, TapOutput> = {};
      for (const [i, tap] of this.taps.entries()) {
        out[tap.as] = await tapOutput(features[i] as TapTensor, tap);
      }
      return out;
    } finally {
      x.dispose();
      for (const t of raw) if (!this.model.isModelTensor(t)) t.dispose();
      for (const f of features) f.tensor.dispose();
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }
}

/** Load a model (in the calling thread) with every tap wired into one forward pass: TF.js, or ONNX for .onnx files. */
export async function loadRunner(spec: ModelSpec): Promise<ModelRunner> {
  if (spec.taps.length === 0) throw new Error(`model ${spec.uri}: no taps; name at least one layer to tap`);
  if (isOnnxUri(spec.uri)) {
    if (spec.backend !== 'onnx' && spec.backend !== 'auto') {
      throw new Error(`backend '${spec.backend}' runs TF.js models; ${spec.uri} is an ONNX model (backend onnx or auto)`);
    }
    return loadOnnxRunner(spec);
  }
  const files = await readModelFiles(spec.uri);
  const backend = await selectBackend(spec.backend);
  const tfjs = await loadTfjs();
  const model =
    files.format === 'tfjs-layers'
      ? await tapLayersModel(tfjs, files, spec.taps)
      : await tapGraphModel(tfjs, files, spec.taps);
  let inputs: ModelInputInfo[];
  try {
    checkInputShape(files.source, model.inputShape, spec.inputShape);
    inputs = files.format === 'tfjs-layers' ? kerasInputs(files.json, files.source) : graphInputs(files.json, files.source);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return new TfjsRunner(backend, tfjs, model, spec.taps, files.source, inputs);
}
