import { describe, expect, it } from 'vitest';
import { hugePagesEnv, type HugePagesContext } from '../../../src/cli/huge-pages.js';

const base: HugePagesContext = {
  argv: ['/usr/bin/node', '/app/bin/layertap.js', 'run', 'job.yaml'],
  env: { PATH: '/usr/bin', HOME: '/root' },
  platform: 'linux',
  glibc: '2.36',
  canExec: true,
};

describe('starting a model command again with malloc huge pages', () => {
  it('adds glibc.malloc.hugetlb=1 for run, worker, enqueue and schedule, keeping the rest of the environment', () => {
    for (const command of ['run', 'worker', 'enqueue', 'schedule']) {
      const env = hugePagesEnv({ ...base, argv: ['/usr/bin/node', '/app/bin/layertap.js', command, '--threads', '1'] });
      expect(env, command).toEqual({ PATH: '/usr/bin', HOME: '/root', GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' });
    }
  });

  it("keeps the user's other tunables and never overrides their own hugetlb", () => {
    expect(hugePagesEnv({ ...base, env: { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' } })?.GLIBC_TUNABLES).toBe(
      'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1',
    );
    // set already (by the user, or by this very start): the process goes on as it is
    expect(hugePagesEnv({ ...base, env: { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' } })).toBeNull();
    expect(hugePagesEnv({ ...base, env: { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1' } })).toBeNull();
  });

  it('leaves other commands, other systems, old Node and LAYERTAP_HUGE_PAGES=0 alone', () => {
    for (const argv of [
      ['/usr/bin/node', '/app/bin/layertap.js', 'layers', 'model.onnx'],
      ['/usr/bin/node', '/app/bin/layertap.js', '--version'],
      ['/usr/bin/node', '/app/bin/layertap.js'],
    ]) {
      expect(hugePagesEnv({ ...base, argv }), argv.join(' ')).toBeNull();
    }
    expect(hugePagesEnv({ ...base, platform: 'darwin' })).toBeNull();
    expect(hugePagesEnv({ ...base, glibc: undefined })).toBeNull();
    expect(hugePagesEnv({ ...base, canExec: false })).toBeNull();
    expect(hugePagesEnv({ ...base, env: { LAYERTAP_HUGE_PAGES: '0' } })).toBeNull();
  });
});
