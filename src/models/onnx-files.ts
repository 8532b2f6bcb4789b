import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOnnxModel, type OnnxModel } from './onnx-graph.js';

/** An ONNX model as read from disk: the model bytes, its external weight files, and its parsed graph. */
export interface OnnxFiles {
  /** absolute path of the .onnx file; messages name the model by it */
  source: string;
  bytes: Uint8Array;
  model: OnnxModel;
  /** external data files as the model names them (location relative to the model's folder), in first-use order */
  external: { location: string; data: Uint8Array }[];
}

/** True when a model URI names an ONNX file. */
export function isOnnxUri(uri: string): boolean {
  return /\.onnx$/i.test(uri.startsWith('file://') ? fileURLToPath(uri) : uri);
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** Resolve an external data location against the model's folder, refusing anything outside it. */
async function resolveExternal(modelPath: string, location: string): Promise<string> {
  // as with a model.json, a downloaded model must not become a way to read arbitrary files
  const refuse = (why: string): Error =>
    new Error(`ONNX model ${modelPath}: external data location '${location}' ${why}; external data must be inside ${path.dirname(modelPath)}`);
  if (location === '' || location.includes('\0')) throw refuse('is empty or contains a NUL byte');
  if (path.isAbsolute(location) || path.win32.isAbsolute(location)) throw refuse('is absolute');
  if (location.split(/[\\/]/).includes('..')) throw refuse("climbs out with '..'");
  const dir = path.dirname(modelPath);
  const file = path.resolve(dir, location);
  if (!isInside(dir, file)) throw refuse('resolves outside the model folder');
  let real: string;
  try {
    real = await fs.realpath(file);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new Error(`ONNX model ${modelPath}: external data file not found: ${file}`);
    throw err;
  }
  if (!isInside(await fs.realpath(dir), real)) throw refuse(`is a link to ${real}, outside the model folder`);
  return file;
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
