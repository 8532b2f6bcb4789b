import { fileURLToPath } from 'node:url';
import { ownModule } from '../../types/own-module.js';
import type { RuntimeEntry } from '../types.js';

/** True when a model URI names an ONNX file. */
export function isOnnxUri(uri: string): boolean {
  return /\.onnx$/i.test(uri.startsWith('file://') ? fileURLToPath(uri) : uri);
}

/** onnxruntime for .onnx files; its module (and onnxruntime) load when a model is first described, listed or run. */
export const onnxEntry: RuntimeEntry = {
  handles: isOnnxUri,
  backends: ['onnx'],
  models: '.onnx models',
  model: 'an ONNX model',
  module: { url: ownModule('models/onnx/runtime.js').href, export: 'onnxRuntime' },
  open: async () => (await import('./runtime.js')).onnxRuntime,
};
