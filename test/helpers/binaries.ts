import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

/**
 * True when running under CI (`CI` set, as CI services and `.ci/run` do). There, a binary that
 * `.ci/run` installs is expected to be present, so its absence is an error rather than a skip.
 */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/**
 * The path of executable `name` on `PATH`, or null: the lookup of `command -v`, which `.ci/run`
 * uses to decide what to install, so the tests find exactly what the CI script saw. (bash falls
 * back to a non-executable file of that name; it could not be run, so here it counts as missing.)
 */
export function which(name: string, path: string = process.env.PATH ?? ''): string | null {
  if (name.includes('/')) return isExecutableFile(name) ? resolve(name) : null;
  for (const dir of path.split(delimiter)) {
    // an empty PATH entry means the current directory
    const candidate = resolve(join(dir || '.', name));
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A binary that some tests drive, as found on PATH. */
export interface Binary {
  /** absolute path, or null when it is not on PATH */
  path: string | null;
  /** why the tests that need it are skipped ('' when found), to show in the skip message */
  missing: string;
}

/**
 * Find `name` on PATH for tests that skip without it. Outside CI a missing binary gives a skip
 * reason; in CI it throws, because `.ci/run` installs it and a silent skip would hide a broken setup.
 */
export function findBinary(name: string, install: string, env: NodeJS.ProcessEnv = process.env): Binary {
  const path = which(name, env.PATH ?? '');
  if (path) return { path, missing: '' };
  const missing = `${name} is not on PATH (${install})`;
  if (inCi(env)) throw new Error(`${missing}; .ci/run installs it, so under CI its absence fails the tests instead of skipping them`);
  return { path: null, missing };
}
