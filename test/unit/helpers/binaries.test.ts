import { execFileSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary, inCi, which } from '../../helpers/binaries.js';
import { tempDir } from '../../helpers/index.js';

// The tests find chromium and docker-compose the way .ci/run decides whether to install them
// (`command -v` in bash), so a binary the CI script saw is one the tests use.
describe('binaries on PATH', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let PATH = '';

  /** What bash's `command -v` prints for `name` with `path` as PATH; null when it finds nothing. */
  function commandV(name: string, path: string): string | null {
    try {
      return execFileSync('/bin/bash', ['--norc', '-c', 'command -v "$1"', 'bash', name], {
        env: { PATH: path },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }).trim();
    } catch {
      return null;
    }
  }

  beforeAll(async () => {
    tmp = await tempDir();
    const dirs = ['first', 'second', 'third'].map((d) => join(tmp.dir, d));
    for (const d of dirs) await mkdir(d);
    const [first, second, third] = dirs as [string, string, string];
    const script = '#!/bin/sh\nexit 0\n';
    // tool-a in two folders: the first on PATH wins
    await writeFile(join(first, 'tool-a'), script);
    await writeFile(join(third, 'tool-a'), script);
    // tool-b: a folder of that name first, the executable later
    await mkdir(join(first, 'tool-b'));
    await writeFile(join(second, 'tool-b'), script);
    for (const f of [join(first, 'tool-a'), join(third, 'tool-a'), join(second, 'tool-b')]) await chmod(f, 0o755);
    PATH = dirs.join(delimiter);
  });
  afterAll(async () => {
    await tmp.remove();
  });

  it('finds what `command -v` finds, first folder on PATH first', () => {
    for (const name of ['tool-a', 'tool-b', 'no-such-tool']) {
      expect(which(name, PATH), name).toBe(commandV(name, PATH));
    }
    expect(which('tool-a', PATH)).toBe(join(tmp.dir, 'first', 'tool-a'));
    expect(which('tool-b', PATH)).toBe(join(tmp.dir, 'second', 'tool-b'));
    expect(which('no-such-tool', PATH)).toBeNull();
  });

  it('does not take a file without execute permission', async () => {
    const plain = join(tmp.dir, 'second', 'tool-c');
    await writeFile(plain, '#!/bin/sh\n');
    expect(which('tool-c', PATH)).toBeNull();
  });

  it('gives a skip reason outside CI and throws under CI', () => {
    expect(findBinary('tool-a', 'install it', { PATH })).toEqual({ path: join(tmp.dir, 'first', 'tool-a'), missing: '' });
    expect(findBinary('tool-a', 'install it', { PATH, CI: 'true' }).path).toBe(join(tmp.dir, 'first', 'tool-a'));
    expect(findBinary('no-such-tool', 'apt-get install no-such-tool', { PATH })).toEqual({
      path: null,
      missing: 'no-such-tool is not on PATH (apt-get install no-such-tool)',
    });
    expect(() => findBinary('no-such-tool', 'apt-get install no-such-tool', { PATH, CI: 'true' })).toThrow(
      'no-such-tool is not on PATH (apt-get install no-such-tool); .ci/run installs it, so under CI its absence fails the tests instead of skipping them',
    );
  });

  it('reads CI the way CI services set it', () => {
    expect(inCi({})).toBe(false);
    expect(inCi({ CI: '' })).toBe(false);
    expect(inCi({ CI: 'false' })).toBe(false);
    expect(inCi({ CI: '0' })).toBe(false);
    expect(inCi({ CI: 'true' })).toBe(true);
    expect(inCi({ CI: '1' })).toBe(true);
  });
});
