import { ownModule } from '../../types/own-module.js';
import type { RuntimeEntry } from '../types.js';
import { TFJS_BACKENDS, tfjsNodeInstalled } from './backend.js';

/** TF.js for model.json files, their folders and builtin:<name>: whatever no runtime before it takes. */
export const tfjsEntry: RuntimeEntry = {
  handles: () => true,
  backends: TFJS_BACKENDS,
  models: 'TF.js models',
  model: 'a TF.js model',
  // tfjs-node uses every core itself, and misbehaves with several threads in one process
  threadLimit: (backend) => (backend === 'tensorflow' || (backend === 'auto' && tfjsNodeInstalled()) ? 1 : undefined),
  module: { url: ownModule('models/tfjs/runtime.js').href, export: 'tfjsRuntime' },
  open: async () => (await import('./runtime.js')).tfjsRuntime,
};
