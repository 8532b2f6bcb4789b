import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { TfjsFormat } from './model-json.js';

/** A pretrained model that `builtin:<name>` names, for docs and `layertap layers` listings. */
export interface BuiltinModel {
  /** the part after `builtin:` */
  name: string;
  description: string;
  format: TfjsFormat;
  /** per-row input shape, NHWC */
  inputShape: [number, number, number];
  /** the pixel range the model was trained on (pixels / 255 for [0, 1]) */
  inputRange: [number, number];
  /** the layer (or graph node) whose output is the pooled image embedding */
  featureLayer: string;
  featureSize: number;
  license: string;
  source: string;
  /** npm package that carries the weights, and the folder inside it */
  packageName: string;
  packageDir: string;
}

const NSFWJS = {
  license: 'MIT (nsfwjs, Copyright (c) 2019 Infinite Red, Inc.)',
  source: 'https://github.com/infinitered/nsfwjs (weights ship in the nsfwjs npm package)',
  packageName: 'nsfwjs',
} as const;

/** The models `builtin:<name>` resolves to. */
export const BUILTIN_MODELS: readonly BuiltinModel[] = Object.freeze([
  {
    name: 'mobilenet_v2',
    description:
      'Keras MobileNetV2 (alpha 1.0, ImageNet backbone) fine-tuned by nsfwjs with a 5-class head; ' +
      'flatten_1 is the pooled 1280-d feature, dense_1 a 256-d hidden layer. uint8-quantized weights.',
    format: 'tfjs-layers',
    inputShape: [224, 224, 3],
    inputRange: [0, 1],
    featureLayer: 'flatten_1',
    featureSize: 1280,
    ...NSFWJS,
    packageDir: 'dist/models/mobilenet_v2',
  },
  {
    name: 'mobilenet_v2_mid',
    description:
      'TF-Hub MobileNetV2 (alpha 1.4) feature vector with a 5-class head fine-tuned by nsfwjs, as a GraphModel; ' +
      'the feature_vector/SpatialSqueeze node is the pooled 1792-d feature. uint8-quantized weights.',
    format: 'tfjs-graph',
    inputShape: [224, 224, 3],
    inputRange: [0, 1],
    featureLayer:
      'StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/StatefulPartitionedCall/' +
      'StatefulPartitionedCall/predict/feature_vector/SpatialSqueeze',
    featureSize: 1792,
    ...NSFWJS,
    packageDir: 'dist/models/mobilenet_v2_mid',
  },
  {
    name: 'inception_v3',
    description:
      'Keras InceptionV3 (ImageNet backbone) fine-tuned by nsfwjs with a 5-class head; ' +
      'flatten_1 is the pooled 2048-d feature, dense_1 a 256-d hidden layer. uint8-quantized weights.',
    format: 'tfjs-layers',
    inputShape: [299, 299, 3],
    inputRange: [0, 1],
    featureLayer: 'flatten_1',
    featureSize: 2048,
    ...NSFWJS,
    packageDir: 'dist/models/inception_v3',
  },
]);

const BUILTIN_PREFIX = 'builtin:';

/** The builtin model a `builtin:<name>` URI names, or null for any other URI. */
export function builtinModel(uri: string): BuiltinModel | null {
  if (!uri.startsWith(BUILTIN_PREFIX)) return null;
  const name = uri.slice(BUILTIN_PREFIX.length);
  const model = BUILTIN_MODELS.find((m) => m.name === name);
  if (model === undefined) {
    throw new Error(
      `unknown builtin model '${uri}'; builtins are: ${BUILTIN_MODELS.map((m) => BUILTIN_PREFIX + m.name).join(', ')} (\`layertap models\` describes them)`,
    );
  }
  return model;
}

const require = createRequire(import.meta.url);

/** Root folder of an installed package, found from its main entry since its exports map hides package.json. */
function packageRoot(packageName: string, uri: string): string {
  let entry: string;
  try {
    entry = require.resolve(packageName);
  } catch {
    throw new Error(`${uri} needs the ${packageName} package, which is not installed: npm install ${packageName}`);
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
      if (pkg.name === packageName) return dir;
    }
  }
  throw new Error(`${uri}: cannot locate the root folder of the ${packageName} package from ${entry}`);
}

/** Absolute folder holding a builtin model's bundled files. */
export function builtinDir(model: BuiltinModel): string {
  return path.join(packageRoot(model.packageName, BUILTIN_PREFIX + model.name), model.packageDir);
}

/** Load a CommonJS data module (a bundled model's topology or weights) without caching it. */
export function requireDataModule(file: string): unknown {
  const resolved = require.resolve(file);
  try {
    return require(resolved) as unknown;
  } finally {
    // the weight modules are megabytes of base64 that would otherwise live as long as the thread
    delete require.cache[resolved];
  }
}
