import { statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isS3Uri, parseS3Uri } from '../storage/s3-client.js';
import type { S3ConnectionOptions } from '../storage/s3-client.js';
import { ImageDirSource } from './image-dir-source.js';
import { NpySource } from './npy-source.js';
import { S3ImageSource } from './s3-image-source.js';
import { S3TableLocation } from './s3-table-location.js';
import { LocalTableLocation } from './table-location.js';
import { TableSource } from './table-source.js';
import type { SourceKind, Source, TableFormat } from './types.js';

export type { SourceKind } from './types.js';

/** What a job file's `source:` section says. */
export interface SourceSpec extends S3ConnectionOptions {
  uri: string;
  type?: SourceKind;
  /** images only */
  extensions?: string[];
  /** tables only */
  idColumn?: string;
  /** tables only */
  inputColumn?: string;
  /** JSONL only: longest line read as a row. @defaultValue 64 MiB */
  maxLineBytes?: number;
  /** images, and tables with an image-path column: largest file or object read for one row. @defaultValue 256 MiB */
  maxRowBytes?: number;
}

const SUPPORTED =
  'supported: a directory of images or an s3:// prefix of them (type: images), a .npy file (type: npy), or a table: .arrow/.arrows/.feather (arrow), .parquet (parquet), .jsonl/.ndjson (jsonl), local or s3://';

const TABLE_EXTENSIONS: ReadonlyArray<[string, TableFormat]> = [
  ['.arrow', 'arrow'],
  ['.arrows', 'arrow'],
  ['.feather', 'arrow'],
  ['.ipc', 'arrow'],
  ['.parquet', 'parquet'],
  ['.pq', 'parquet'],
  ['.jsonl', 'jsonl'],
  ['.ndjson', 'jsonl'],
];

function isTable(type: SourceKind): type is TableFormat {
  return type === 'arrow' || type === 'parquet' || type === 'jsonl';
}

function tableFormatOf(name: string): TableFormat | null {
  const lower = name.toLowerCase();
  return TABLE_EXTENSIONS.find(([ext]) => lower.endsWith(ext))?.[1] ?? null;
}

/** Turns a local source uri (path or file:// URL) into an absolute path, rejecting other schemes. */
export function sourcePath(uri: string): string {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1];
  if (scheme) throw new Error(`source.uri: ${scheme}:// is not a local path (${uri}); ${SUPPORTED}`);
  return path.resolve(uri);
}

/**
 * Decides the source type from the uri: a folder is 'images', a file goes by its extension
 * (.npy, .arrow, .parquet, .jsonl, ...); for s3:// a key with a table extension is that table,
 * anything else is a prefix of images. Local paths are looked at; s3:// uris are not.
 */
export function inferSourceType(uri: string): SourceKind {
  if (isS3Uri(uri)) {
    const { key } = parseS3Uri(uri, 'source.uri');
    return tableFormatOf(key) ?? 'images';
  }
  const p = sourcePath(uri);
  const st = statOrThrow(p);
  if (st.isDirectory()) return 'images';
  if (st.isFile()) {
    if (p.toLowerCase().endsWith('.npy')) return 'npy';
    const table = tableFormatOf(p);
    if (table) return table;
  }
  throw new Error(`source.uri: cannot tell what kind of dataset ${p} is; ${SUPPORTED}`);
}

/** Creates the Source for a job's `source:` section, inferring the type when absent. */
export function createSource(spec: SourceSpec): Source {
  const type = spec.type ?? inferSourceType(spec.uri);
  if (spec.extensions && type !== 'images') throw new Error(`source.extensions: only applies to images sources, not ${type}`);
  for (const field of ['idColumn', 'inputColumn'] as const) {
    if (spec[field] !== undefined && !isTable(type)) throw new Error(`source.${field}: only applies to table sources (arrow, parquet, jsonl), not ${type}`);
  }
  if (spec.maxLineBytes !== undefined && type !== 'jsonl') throw new Error(`source.maxLineBytes: only applies to jsonl sources, not ${type}`);
  if (spec.maxRowBytes !== undefined && type === 'npy') throw new Error('source.maxRowBytes: only applies to sources that read a file per row (images, tables with an image-path column), not npy');
  const rowBytes = spec.maxRowBytes !== undefined ? { maxRowBytes: spec.maxRowBytes } : {};
  const table = isTable(type)
    ? {
        ...(spec.idColumn ? { idColumn: spec.idColumn } : {}),
        ...(spec.inputColumn ? { inputColumn: spec.inputColumn } : {}),
        ...(spec.maxLineBytes !== undefined ? { maxLineBytes: spec.maxLineBytes } : {}),
      }
    : {};

  if (isS3Uri(spec.uri)) {
    const { bucket, key } = parseS3Uri(spec.uri, 'source.uri');
    const connection: S3ConnectionOptions = {
      ...(spec.endpoint !== undefined ? { endpoint: spec.endpoint } : {}),
      ...(spec.region !== undefined ? { region: spec.region } : {}),
      ...(spec.forcePathStyle !== undefined ? { forcePathStyle: spec.forcePathStyle } : {}),
    };
    if (type === 'images') return new S3ImageSource(bucket, key, { connection, ...rowBytes, ...(spec.extensions ? { extensions: spec.extensions } : {}) });
    if (type === 'npy') throw new Error(`source.uri: .npy sources must be local files (${spec.uri}); copy it locally, or store it as a .parquet/.arrow table`);
    if (key === '' || key.endsWith('/')) throw new Error(`source.uri: type ${type} needs the key of one table object, but ${spec.uri} is a prefix`);
    return new TableSource(spec.uri, type, new S3TableLocation(bucket, key, connection, rowBytes), table);
  }

  for (const field of ['endpoint', 'region', 'forcePathStyle'] as const) {
    if (spec[field] !== undefined) throw new Error(`source.${field}: only applies to s3:// sources, not ${spec.uri}`);
  }
  const p = sourcePath(spec.uri);
  const st = statOrThrow(p);
  switch (type) {
    case 'images':
      if (!st.isDirectory()) throw new Error(`source.uri: type images needs a directory, but ${p} is not one`);
      return new ImageDirSource(p, { ...rowBytes, ...(spec.extensions ? { extensions: spec.extensions } : {}) });
    case 'npy':
      if (!st.isFile()) throw new Error(`source.uri: type npy needs a .npy file, but ${p} is not a file`);
      return new NpySource(p);
    case 'arrow':
    case 'parquet':
    case 'jsonl':
      if (!st.isFile()) throw new Error(`source.uri: type ${type} needs a file, but ${p} is not one`);
      return new TableSource(p, type, new LocalTableLocation(p, rowBytes), table);
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
