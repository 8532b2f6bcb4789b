import { promises as fs } from 'node:fs';
import path from 'node:path';

/** The `code` of a Node.js system error ('ENOENT'), if it has one. */
export function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** How {@link resolveInside} names what it resolves in its messages. */
export interface InsideNames {
  /** the start of a refusal: "model.json /m/model.json: weight path 'w.bin'" */
  what: string;
  /** what must stay in the folder: 'weight files' */
  kind: string;
  /** the message for a path that does not exist */
  missing(file: string): string;
}

/**
 * Resolves `rel`, a path a model file names (weights, external data), against the folder of
 * `owner`, refusing anything that could read outside it: an absolute path (a scheme or a drive
 * letter too), '..', or a link out. Models are often downloaded, and their paths must not
 * become a way to read arbitrary files.
 */
export async function resolveInside(owner: string, rel: string, names: InsideNames): Promise<string> {
  const dir = path.dirname(owner);
  const refuse = (why: string): Error => new Error(`${names.what} ${why}; ${names.kind} must be inside ${dir}`);
  if (rel === '' || rel.includes('\0')) throw refuse('is empty or contains a NUL byte');
  if (path.isAbsolute(rel) || path.win32.isAbsolute(rel) || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(rel)) throw refuse('is absolute');
  if (rel.split(/[\\/]/).includes('..')) throw refuse("climbs out with '..'");
  const file = path.resolve(dir, rel);
  if (!isInside(dir, file)) throw refuse('resolves outside the model folder');
  let real: string;
  try {
    real = await fs.realpath(file);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new Error(names.missing(file));
    throw err;
  }
  if (!isInside(await fs.realpath(dir), real)) throw refuse(`is a link to ${real}, outside the model folder`);
  return file;
}
