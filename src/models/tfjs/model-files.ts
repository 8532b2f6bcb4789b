import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinDir, builtinModel, requireDataModule, type BuiltinModel } from './builtin.js';
import { detectFormat, graphInputs, kerasInputs, parseModelJson, validateModelJson, type ModelJson, type TfjsFormat } from './model-json.js';
import { errorCode, resolveInside } from '../model-paths.js';
import type { ModelInputInfo } from '../types.js';
import { groupBytes } from './weight-size.js';

/** A TF.js model as read from disk (or from a builtin package), not yet handed to tfjs. */
export interface ModelFiles {
  /** what messages call the model: the model.json path or builtin:<name> */
  source: string;
  json: ModelJson;
  format: TfjsFormat;
  /** bytes of every weight file, in manifest order (group by group, path by path) */
  weightFiles: Uint8Array[];
}

/** The model.json a file URI names: a path or file:// URL, to the file or to its folder. */
export async function modelJsonPath(uri: string): Promise<string> {
  const given = path.resolve(uri.startsWith('file://') ? fileURLToPath(uri) : uri);
  if (given.toLowerCase().endsWith('.onnx')) {
    throw new Error(`${given} is an ONNX model; this loader reads TF.js model.json files and builtin: models`);
  }
  try {
    const stat = await fs.stat(given);
    return stat.isDirectory() ? path.join(given, 'model.json') : given;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new Error(`model file not found: ${given}`);
    throw err;
  }
}

/** Resolve a manifest path against the model folder, refusing anything that could read outside it. */
export async function resolveWeightPath(jsonPath: string, weightPath: string): Promise<string> {
  return resolveInside(jsonPath, weightPath, {
    what: `model.json ${jsonPath}: weight path '${weightPath}'`,
    kind: 'weight files',
    missing: (file) => `weight file not found: ${file} (listed in ${jsonPath})`,
  });
}

function sizeMismatch(source: string, group: number, files: string[], have: number, need: number): Error {
  return new Error(
    `model.json ${source}: weight files of manifest group ${group} (${files.join(', ')}) hold ${have} bytes, ` +
      `but the manifest's weights need ${need} bytes; the files are truncated or belong to another model`,
  );
}

async function readDiskModel(uri: string): Promise<ModelFiles> {
  const jsonPath = await modelJsonPath(uri);
  let text: string;
  try {
    text = await fs.readFile(jsonPath, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new Error(`model file not found: ${jsonPath}`);
    throw err;
  }
  const json = parseModelJson(text, jsonPath);
  const format = detectFormat(json, jsonPath);

  // resolve and size-check every file before reading any, so a bad model fails fast and cheaply
  const groups = await Promise.all(
    json.weightsManifest.map(async (group, g) => {
      const files = await Promise.all(group.paths.map((p) => resolveWeightPath(jsonPath, p)));
      const sizes = await Promise.all(files.map(async (f) => (await fs.stat(f)).size));
      const need = groupBytes(group);
      const have = sizes.reduce((a, b) => a + b, 0);
      if (need !== null && have !== need) throw sizeMismatch(jsonPath, g, group.paths, have, need);
      return files;
    }),
  );
  const weightFiles: Uint8Array[] = [];
  for (const file of groups.flat()) weightFiles.push(new Uint8Array(await fs.readFile(file)));
  return { source: jsonPath, json, format, weightFiles };
}

function readBuiltin(model: BuiltinModel): ModelFiles {
  const source = `builtin:${model.name}`;
  const dir = builtinDir(model);
  const json = validateModelJson(requireDataModule(path.join(dir, 'model.min.js')), source);
  const weightFiles: Uint8Array[] = [];
  json.weightsManifest.forEach((group, g) => {
    const bytes = group.paths.map((p) => {
      if (p.includes('/') || p.includes('\\') || p.includes('..')) {
        throw new Error(`model ${source}: weight path '${p}' is not a plain file name`);
      }
      const data = requireDataModule(path.join(dir, `${p}.min.js`));
      if (typeof data !== 'string') throw new Error(`model ${source}: ${p}.min.js does not export base64 weights`);
      return new Uint8Array(Buffer.from(data, 'base64'));
    });
    const need = groupBytes(group);
    const have = bytes.reduce((n, b) => n + b.byteLength, 0);
    if (need !== null && have !== need) throw sizeMismatch(source, g, group.paths, have, need);
    weightFiles.push(...bytes);
  });
  return { source, json, format: detectFormat(json, source), weightFiles };
}

/** Read a model's topology and weights through the path checks: a model.json path/URL/folder or builtin:<name>. */
export async function readModelFiles(uri: string): Promise<ModelFiles> {
  const builtin = builtinModel(uri);
  return builtin !== null ? readBuiltin(builtin) : readDiskModel(uri);
}

/** The inputs a TF.js model declares, from its model.json (a LayersModel's input layers, a GraphModel's placeholders). */
export function tfjsInputs(files: Pick<ModelFiles, 'json' | 'source' | 'format'>): ModelInputInfo[] {
  return files.format === 'tfjs-layers' ? kerasInputs(files.json, files.source) : graphInputs(files.json, files.source);
}
