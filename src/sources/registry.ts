import { readdirSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobConfig } from '../config/schema.js';
import { isS3Uri, parseS3Uri, S3_CONNECTION_FIELDS, s3Connection, type S3ConnectionOptions } from '../storage/s3-client.js';
import { Registry } from '../types/registry.js';
import { nearestNames } from '../types/did-you-mean.js';
import type { Source, TableFormat } from './types.js';
import { FieldError } from '../types/errors.js';

/** What a job file's `source:` section says; `type` is inferred from the uri when absent. */
export type SourceSpec = JobConfig['source'] & {
  /** set by planning when the model takes token ids: a table's string column is text, not image paths */
  text?: boolean;
};

/** Fields of `source:` that only some kinds take (the S3 connection fields go with s3:// uris instead). */
export type SourceField = Exclude<keyof SourceSpec, 'uri' | 'type' | 'text' | keyof S3ConnectionOptions>;

/**
 * One kind of dataset: how a uri is recognised as it, which job fields it takes, and how it is
 * opened. Its module is imported by `open`, so a job loads only the reader it uses.
 */
export interface SourceEntry {
  /** what it reads, for the list of what is supported: 'a .npy file' */
  describe: string;
  /** the name it shares with related kinds in messages: 'table' gives "table sources (arrow, parquet, jsonl)" */
  family?: string;
  /** uris of this scheme (`toy://...`) are this kind */
  scheme?: string;
  /** file name endings (lower case, with the dot) that make a local file, or an s3:// key when `s3` is 'key', this kind */
  extensions?: readonly string[];
  /** a local folder is this kind */
  directory?: boolean;
  /** s3:// uris: 'key' for one object named with one of `extensions`, 'prefix' for the objects under any other key */
  s3?: 'key' | 'prefix';
  /** the kind's own job fields; a kind that takes `inputColumn` reads its rows from a table column */
  fields: readonly SourceField[];
  /** the source for a spec whose fields were checked and whose type was decided */
  open(spec: SourceSpec & { type: string }): Promise<Source>;
}

/** Source kinds by the name `source.type` gives them. */
export type SourceRegistry = Registry<SourceEntry>;

/** `maxRowBytes` as the readers of a file per row take it. */
function rowBytes(spec: SourceSpec): { maxRowBytes?: number } {
  return spec.maxRowBytes !== undefined ? { maxRowBytes: spec.maxRowBytes } : {};
}

/** A table format read locally or from one s3:// object; the image paths a table may hold are read beside it. */
function tableEntry(format: TableFormat, what: string, extensions: readonly string[], own: readonly SourceField[] = []): SourceEntry {
  return {
    describe: `${what} (${extensions.join('/')}, local or s3://)`,
    family: 'table',
    extensions,
    s3: 'key',
    fields: ['idColumn', 'inputColumn', 'maxRowBytes', 'carry', ...own],
    async open(spec) {
      const options = {
        ...(spec.carry ? { carry: spec.carry } : {}),
        ...(spec.idColumn ? { idColumn: spec.idColumn } : {}),
        ...(spec.inputColumn ? { inputColumn: spec.inputColumn } : {}),
        ...(spec.maxLineBytes !== undefined ? { maxLineBytes: spec.maxLineBytes } : {}),
        ...(spec.text === true ? { text: true } : {}),
      };
      const { TableSource } = await import('./table-source.js');
      if (isS3Uri(spec.uri)) {
        const { bucket, key } = parseS3Uri(spec.uri, 'source.uri');
        if (key === '' || key.endsWith('/'))
          throw new FieldError('source.uri', `type ${spec.type} needs the key of one table object, but ${spec.uri} is a prefix`);
        const { S3TableLocation } = await import('./s3-table-location.js');
        return new TableSource(spec.uri, format, new S3TableLocation(bucket, key, s3Connection(spec), rowBytes(spec)), options);
      }
      const file = localPath(spec.uri, 'file', (p) => `type ${spec.type} needs a file, but ${p} is not one`);
      const { LocalTableLocation } = await import('./table-location.js');
      return new TableSource(file, format, new LocalTableLocation(file, rowBytes(spec)), options);
    },
  };
}

/** The source kinds layertap has built in: image folders and prefixes, .npy arrays, and tables. */
export function defaultSources(): SourceRegistry {
  return new Registry<SourceEntry>('source.type', 'type', {
    images: {
      describe: 'a directory of images or an s3:// prefix of them',
      directory: true,
      s3: 'prefix',
      fields: ['extensions', 'maxRowBytes'],
      async open(spec) {
        const options = { ...rowBytes(spec), ...(spec.extensions ? { extensions: spec.extensions } : {}) };
        if (isS3Uri(spec.uri)) {
          const { bucket, key } = parseS3Uri(spec.uri, 'source.uri');
          const { S3ImageSource } = await import('./s3-image-source.js');
          return new S3ImageSource(bucket, key, { connection: s3Connection(spec), ...options });
        }
        const dir = localPath(spec.uri, 'directory', (p) => `type images needs a directory, but ${p} is not one`);
        const { ImageDirSource } = await import('./image-dir-source.js');
        return new ImageDirSource(dir, options);
      },
    },
    npy: {
      describe: 'a .npy file',
      extensions: ['.npy'],
      fields: [],
      async open(spec) {
        if (isS3Uri(spec.uri))
          throw new FieldError('source.uri', `.npy sources must be local files (${spec.uri}); copy it locally, or store it as a .parquet/.arrow table`);
        const file = localPath(spec.uri, 'file', (p) => `type npy needs a .npy file, but ${p} is not a file`);
        const { NpySource } = await import('./npy-source.js');
        return new NpySource(file);
      },
    },
    arrow: tableEntry('arrow', 'an Arrow table', ['.arrow', '.arrows', '.feather', '.ipc']),
    parquet: tableEntry('parquet', 'a Parquet table', ['.parquet', '.pq']),
    jsonl: tableEntry('jsonl', 'a JSON Lines table', ['.jsonl', '.ndjson'], ['maxLineBytes']),
    text: {
      describe: 'a .txt file, one row of text per line',
      extensions: ['.txt'],
      fields: ['maxLineBytes', 'carry'],
      async open(spec) {
        if (isS3Uri(spec.uri))
          throw new FieldError('source.uri', `.txt sources must be local files (${spec.uri}); or store the lines as a .parquet/.jsonl table`);
        const file = localPath(spec.uri, 'file', (p) => `type text needs a .txt file, but ${p} is not a file`);
        const { TextFileSource } = await import('./text-file-source.js');
        return new TextFileSource(file, {
          ...(spec.maxLineBytes !== undefined ? { maxLineBytes: spec.maxLineBytes } : {}),
          ...(spec.carry ? { carry: spec.carry } : {}),
        });
      },
    },
  });
}

/** "supported: a .npy file (type: npy), ..." for messages about a uri no kind takes. */
function supported(sources: SourceRegistry): string {
  return `supported: ${sources
    .list()
    .map(([name, e]) => `${e.describe} (type: ${name})`)
    .join(', ')}`;
}

function schemeOf(uri: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1]?.toLowerCase();
}

function hasExtension(name: string, entry: SourceEntry): boolean {
  const lower = name.toLowerCase();
  return (entry.extensions ?? []).some((ext) => lower.endsWith(ext));
}

/** Turns a local source uri (path or file:// URL) into an absolute path, rejecting other schemes. */
export function sourcePath(uri: string, sources: SourceRegistry = defaultSources()): string {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  const scheme = schemeOf(uri);
  if (scheme) throw new FieldError('source.uri', `${scheme}:// is not a local path (${uri}); ${supported(sources)}`);
  return path.resolve(uri);
}

/**
 * Decides the source type from the uri: a kind's own scheme, then for s3:// a key with a kind's
 * extension (a table) or else a prefix (images); a local folder or file goes by what the kinds
 * say of folders and file endings. Local paths are looked at; s3:// uris are not.
 */
export function inferSourceType(uri: string, sources: SourceRegistry = defaultSources()): string {
  const kinds = sources.list();
  const scheme = schemeOf(uri);
  const byScheme = kinds.find(([, e]) => e.scheme !== undefined && e.scheme === scheme);
  if (byScheme) return byScheme[0];
  if (isS3Uri(uri)) {
    const { key } = parseS3Uri(uri, 'source.uri');
    const kind = kinds.find(([, e]) => e.s3 === 'key' && hasExtension(key, e)) ?? kinds.find(([, e]) => e.s3 === 'prefix');
    if (kind) return kind[0];
    throw new FieldError('source.uri', `cannot tell what kind of dataset ${uri} is; ${supported(sources)}`);
  }
  const p = sourcePath(uri, sources);
  const st = statOrThrow(p);
  const kind = st.isDirectory() ? kinds.find(([, e]) => e.directory) : st.isFile() ? kinds.find(([, e]) => hasExtension(p, e)) : undefined;
  if (kind) return kind[0];
  throw new FieldError('source.uri', `cannot tell what kind of dataset ${p} is; ${supported(sources)}`);
}

/** Which sources take a field, where naming the kinds would not say why. */
const TAKEN_BY: Partial<Record<SourceField, string>> = {
  maxRowBytes: 'sources that read a file per row (images, tables with an image-path column)',
};

/** Fails on a field set in `spec` that its kind does not take, naming the kinds that do. */
function checkFields(spec: SourceSpec, type: string, entry: SourceEntry, sources: SourceRegistry): void {
  // `text` is set by planning, not by the job file: every kind may be given it
  const own: ReadonlySet<string> = new Set<string>(['uri', 'type', 'text', ...S3_CONNECTION_FIELDS]);
  for (const [field, value] of Object.entries(spec)) {
    if (value === undefined || own.has(field) || (entry.fields as readonly string[]).includes(field)) continue;
    const takers = sources.list().filter(([, e]) => (e.fields as readonly string[]).includes(field));
    const families = new Set(takers.map(([, e]) => e.family));
    const names = takers.map(([n]) => n);
    const family = takers.length > 1 && families.size === 1 ? [...families][0] : undefined;
    if (takers.length === 0) throw new FieldError(`source.${field}`, `no source type takes it (types are: ${sources.names.join(', ')})`);
    const which = TAKEN_BY[field as SourceField] ?? (family !== undefined ? `${family} sources (${names.join(', ')})` : `${names.join(', ')} sources`);
    throw new FieldError(`source.${field}`, `only applies to ${which}, not ${type}`);
  }
  const s3Field = Object.keys(s3Connection(spec))[0];
  if (s3Field !== undefined && !isS3Uri(spec.uri)) throw new FieldError(`source.${s3Field}`, `only applies to s3:// sources, not ${spec.uri}`);
}

/**
 * Opens the Source for a job's `source:` section: the type (inferred when absent) must be in
 * `sources`, and every field set must be one its kind takes. Only that kind's module is loaded.
 */
export async function createSource(spec: SourceSpec, sources: SourceRegistry = defaultSources()): Promise<Source> {
  const type = spec.type ?? inferSourceType(spec.uri, sources);
  const entry = sources.get(type);
  checkFields(spec, type, entry, sources);
  return entry.open({ ...spec, type });
}

/** The absolute path of a local uri that must be a `kind`; `wrong` says why not when it is something else. */
function localPath(uri: string, kind: 'file' | 'directory', wrong: (path: string) => string): string {
  const p = sourcePath(uri);
  const st = statOrThrow(p);
  if (kind === 'directory' ? !st.isDirectory() : !st.isFile()) throw new FieldError('source.uri', `${wrong(p)}`);
  return p;
}

function statOrThrow(p: string): Stats {
  try {
    return statSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new FieldError('source.uri', `no such file or directory: ${p}${nearby(p)}`);
    throw new FieldError('source.uri', `cannot access ${p}: ${(err as Error).message}`, { cause: err });
  }
}

/** Entries of a missing path's nearest existing folder shown when none is near its name. */
const NEARBY_LISTED = 8;

/**
 * What exists near a path that does not: in the deepest folder of it that exists, the entries
 * nearest the first missing name ("did you mean"), else what that folder holds.
 */
function nearby(p: string): string {
  let dir = path.dirname(p);
  let missing = path.basename(p);
  for (;;) {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return '';
      missing = path.basename(dir);
      dir = parent;
      continue;
    }
    const near = nearestNames(missing, names, 3);
    if (near.length) return ` (did you mean ${near.map((n) => path.join(dir, n)).join(' or ')}?)`;
    if (names.length === 0) return ` (${dir} is empty)`;
    const shown = names.slice(0, NEARBY_LISTED).join(', ');
    return ` (${dir} has no '${missing}'; it holds ${shown}${names.length > NEARBY_LISTED ? `, ... ${names.length} in all` : ''})`;
  }
}
