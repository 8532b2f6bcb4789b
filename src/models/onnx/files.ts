import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCode, resolveInside } from '../model-paths.js';
import { parseOnnxModel, type OnnxModel } from './graph.js';

/** An ONNX model as read from disk: the model bytes, its external weight files, and its parsed graph. */
export interface OnnxFiles {
  /** absolute path of the .onnx file; messages name the model by it */
  source: string;
  bytes: Uint8Array;
  model: OnnxModel;
  /** external data files as the model names them (location relative to the model's folder), in first-use order */
  external: { location: string; data: Uint8Array }[];
}

/** Resolve an external data location against the model's folder, refusing anything outside it. */
function resolveExternal(modelPath: string, location: string): Promise<string> {
  return resolveInside(modelPath, location, {
    what: `ONNX model ${modelPath}: external data location '${location}'`,
    kind: 'external data',
    missing: (file) => `ONNX model ${modelPath}: external data file not found: ${file}`,
  });
}

/** Read an .onnx file (a path or file:// URL) and every external data file it references, with the path checks. */
export async function readOnnxFiles(uri: string): Promise<OnnxFiles> {
  const source = path.resolve(uri.startsWith('file://') ? fileURLToPath(uri) : uri);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await fs.readFile(source));
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new Error(`model file not found: ${source}`);
    if (errorCode(err) === 'EISDIR') throw new Error(`${source} is a folder; name the .onnx file`);
    throw err;
  }
  const model = parseOnnxModel(bytes, source);
  const external: OnnxFiles['external'] = [];
  for (const init of model.externalTensors) {
    if (init.external === null) continue;
    const { location, offset, length } = init.external;
    let file = external.find((e) => e.location === location);
    if (file === undefined) {
      file = { location, data: new Uint8Array(await fs.readFile(await resolveExternal(source, location))) };
      external.push(file);
    }
    if (offset + (length ?? 0) > file.data.byteLength) {
      throw new Error(
        `ONNX model ${source}: weight '${init.name}' needs bytes ${offset}..${offset + (length ?? 0)} of ${location}, ` +
          `which has ${file.data.byteLength}; the file is truncated or belongs to another model`,
      );
    }
  }
  return { source, bytes, model, external };
}

/** sha256 (hex) of the model bytes and every external data file's bytes, in first-use order. */
export function onnxContentHash(files: OnnxFiles): string {
  const hash = createHash('sha256');
  hash.update(files.bytes);
  for (const e of files.external) {
    // the location is part of the model bytes already; the length keeps file boundaries unambiguous
    hash.update(`\n${e.data.byteLength}\n`);
    hash.update(e.data);
  }
  return hash.digest('hex');
}
