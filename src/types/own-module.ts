import { existsSync } from 'node:fs';

/**
 * Where one of layertap's own compiled modules is, as a file: URL a worker thread can import:
 * `path` is relative to the package's source root ('workers/thread.js'). Running from the
 * TypeScript sources (tests), the compiled copy in dist/ stands in: worker threads do not go
 * through the test runner's transform. Neither there: the module beside this one, which
 * importing then names.
 */
export function ownModule(path: string): URL {
  const beside = new URL(`../${path}`, import.meta.url);
  if (existsSync(beside)) return beside;
  const built = new URL(`../../dist/${path}`, import.meta.url);
  return existsSync(built) ? built : beside;
}
