import type { Tensor } from '@tensorflow/tfjs-core';
import type { ResolvedTap } from '../../config/resolved.js';
import { selectBackend } from './backend.js';
import { ModelInputError } from '../errors.js';
import { checkInputs, checkRowShape } from '../model-inputs.js';
import { readModelFiles, tfjsInputs } from './model-files.js';
import { tapOutput, tapTensor, type TapTensor } from './tap-tensor.js';
import { tapGraphModel, tapLayersModel, type TappedModel } from './tapped-model.js';
import { loadTfjs, type Tfjs } from './tfjs.js';
import type { ModelInputInfo, ModelInputs, ModelRunner, ModelSpec, NamedTensor, TapOutput } from '../types.js';

/** Layout of a TF.js runner's activations: TF.js convolutions are NHWC. */
export const TFJS_LAYOUT = 'nhwc';

class TfjsRunner implements ModelRunner {
  readonly layout = TFJS_LAYOUT;
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
          const feature = tapTensor(core, activation, tap, rows, TFJS_LAYOUT);
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

/** Load a TF.js model (in the calling thread) with every tap wired into one forward pass. */
export async function loadTfjsRunner(spec: ModelSpec): Promise<ModelRunner> {
  if (spec.taps.length === 0) throw new Error(`model ${spec.uri}: no taps; name at least one layer to tap`);
  const files = await readModelFiles(spec.uri);
  const backend = await selectBackend(spec.backend);
  const tfjs = await loadTfjs();
  const model = files.format === 'tfjs-layers' ? await tapLayersModel(tfjs, files, spec.taps) : await tapGraphModel(tfjs, files, spec.taps);
  let inputs: ModelInputInfo[];
  try {
    checkRowShape(files.source, model.inputShape, spec.inputShape);
    inputs = tfjsInputs(files);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return new TfjsRunner(backend, tfjs, model, spec.taps, files.source, inputs);
}
