import { statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImageDirSource } from './image-dir-source.js';
import { NpySource } from './npy-source.js';
import type { Source } from './types.js';

/** Source kinds this build can read. */
export type SourceKind = 'images' | 'npy';

/** What a job file's `source:` section says. */
export interface SourceSpec {
  uri: string;
  type?: SourceKind;
  extensions?: string[];
}

const SUPPORTED =
  'supported: a directory of images (type: images) or a .npy file (type: npy); tables and s3:// come later';

/** Turns a source uri (path or file:// URL) into an absolute local path, rejecting remote schemes. */
export function sourcePath(uri: string): string {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1];
  if (scheme) {
    throw new Error(`source.uri: ${scheme}:// sources are not supported yet (${uri}); ${SUPPORTED}`);
  }
  return path.resolve(uri);
}

/** Decides the source type from the uri: a directory is 'images', a *.npy file is 'npy'. */
export function inferSourceType(uri: string): SourceKind {
  const p = sourcePath(uri);
  const st = statOrThrow(p);
  if (st.isDirectory()) return 'images';
  if (st.isFile() && p.toLowerCase().endsWith('.npy')) return 'npy';
  throw new Error(`source.uri: cannot tell what kind of dataset ${p} is; ${SUPPORTED}`);
}

/** Creates the Source for a job's `source:` section, inferring the type when absent. */
export function createSource(spec: SourceSpec): Source {
  const p = sourcePath(spec.uri);
  const type = spec.type ?? inferSourceType(spec.uri);
  const st = statOrThrow(p);
  switch (type) {
    case 'images':
      if (!st.isDirectory()) {
        throw new Error(`source.uri: type images needs a directory, but ${p} is not one`);
      }
      return new ImageDirSource(p, spec.extensions ? { extensions: spec.extensions } : {});
    case 'npy':
      if (!st.isFile()) throw new Error(`source.uri: type npy needs a .npy file, but ${p} is not a file`);
      if (spec.extensions) throw new Error('source.extensions: only applies to images sources, not npy');
      return new NpySource(p);
    default: {
      const never: never = type;
      throw new Error(`source.type: unknown type '${String(never)}'; ${SUPPORTED}`);
    }
  }
}

function statOrThrow(p: string): Stats {
  try {
    return statSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new Error(`source.uri: no such file or directory: ${p}`);
    throw new Error(`source.uri: cannot access ${p}: ${(err as Error).message}`, { cause: err });
  }
}
