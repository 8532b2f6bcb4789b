import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Table } from 'apache-arrow';
import { defaultFormats, type FormatRegistry } from './formats.js';
import { decodeArrow } from './part-readers.js';

/** Reads a whole Arrow IPC file (or stream) from a path or bytes into a Table. */
export async function readArrowFile(source: string | Uint8Array): Promise<Table> {
  const bytes = typeof source === 'string' ? await readFile(source) : source;
  return decodeArrow(bytes, typeof source === 'string' ? source : 'the given bytes');
}

/** How {@link readPartFile} finds the format of a part file. */
export interface ReadPartOptions {
  /** the file's name or key, whose extension names its format, when `source` is bytes */
  name?: string;
  /** the formats that may have written it. @defaultValue the built-ins */
  formats?: FormatRegistry;
}

/**
 * Reads a whole part file into a Table, decoded by the entry of the format registry whose
 * extension the file's name has (else, as for bytes without a name, the first entry that
 * recognises its first bytes).
 */
export async function readPartFile(source: string | Uint8Array, opts: ReadPartOptions = {}): Promise<Table> {
  const formats = opts.formats ?? defaultFormats();
  const bytes = typeof source === 'string' ? await readFile(source) : source;
  const name = typeof source === 'string' ? source : opts.name;
  const what = name ?? 'the given bytes';
  const ext = name !== undefined ? extname(name).slice(1) : '';
  const entries = formats.list().map(([, e]) => e);
  const entry = entries.find((e) => ext !== '' && e.extension === ext) ?? entries.find((e) => e.recognises(bytes));
  if (entry === undefined) {
    const known = [...new Set(entries.map((e) => `.${e.extension}`))].join(', ');
    throw new Error(`${what} is not a part file of a known format (${known})`);
  }
  return entry.read(bytes, what);
}
