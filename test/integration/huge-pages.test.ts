import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from '../helpers/cli.js';
import { REDIS_URL, testPrefix } from '../helpers/index.js';

/** The environment a running process was started with (Linux). */
function environOf(pid: number): Map<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return new Map(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

const canExec = typeof (process as { execve?: unknown }).execve === 'function';
const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;

// A worker started as users start it: on Linux with glibc and a Node that has process.execve, it
// runs with malloc's huge pages, under the process id it was started with; elsewhere as it was.
describe.runIf(process.platform === 'linux')('a worker process and malloc huge pages', () => {
  const { prefix, cleanup } = testPrefix();
  const workers: CliProcess[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await cleanup();
  });

  const start = async (extra: NodeJS.ProcessEnv): Promise<Map<string, string>> => {
    const env: NodeJS.ProcessEnv = { REDIS_URL, LAYERTAP_PREFIX: prefix, GLIBC_TUNABLES: undefined, LAYERTAP_HUGE_PAGES: undefined, ...extra };
    const w = startCli(['worker', '--threads', '1'], env);
    workers.push(w);
    await w.waitFor('layertap worker: ready');
    // the process the test spawned is the worker: same pid, started again in place
    return environOf(w.proc.pid!);
  };

  it(`sets glibc.malloc.hugetlb=1 ${canExec && glibc ? 'in place (process.execve)' : 'only where process.execve and glibc exist (not here)'}`, async () => {
    const env = await start({});
    expect(env.get('GLIBC_TUNABLES')).toBe(canExec && glibc ? 'glibc.malloc.hugetlb=1' : undefined);
    expect(env.get('LAYERTAP_PREFIX')).toBe(prefix);
  });

  it("keeps the user's own setting, and LAYERTAP_HUGE_PAGES=0 turns it off", async () => {
    expect((await start({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' })).get('GLIBC_TUNABLES')).toBe('glibc.malloc.hugetlb=0');
    expect((await start({ LAYERTAP_HUGE_PAGES: '0' })).get('GLIBC_TUNABLES')).toBeUndefined();
  });
});
