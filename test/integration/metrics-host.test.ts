import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { WorkerMetrics } from '../../src/ops/metrics.js';
import { startCli, type CliProcess } from '../helpers/cli.js';
import { REDIS_URL, testPrefix } from '../helpers/index.js';

/** A non-loopback IPv4 address of this machine, if it has one. */
function machineAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}

/** 'open' when a TCP connection to address:port succeeds, else the error code. */
function probe(address: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port });
    s.once('connect', () => {
      s.destroy();
      resolve('open');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

const address = machineAddress();

// The metrics server tells anyone who can reach it the dataset names, run ids and queue depths:
// it listens on loopback unless told otherwise.
describe.skipIf(address === null)(`metrics server bind address${address === null ? ' (skipped: no non-loopback address)' : ''}`, () => {
  const { prefix, cleanup } = testPrefix();
  let worker: CliProcess | null = null;
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await cleanup();
  });

  it('WorkerMetrics.listen binds 127.0.0.1 by default, and the host given otherwise', async () => {
    const m = new WorkerMetrics({ settings: { redisUrl: REDIS_URL, prefix }, defaultMetrics: false });
    const port = await m.listen(0);
    try {
      expect(await probe('127.0.0.1', port)).toBe('open');
      expect(await probe(address!, port)).toBe('ECONNREFUSED');
    } finally {
      await m.close();
    }
    const wide = new WorkerMetrics({ settings: { redisUrl: REDIS_URL, prefix }, defaultMetrics: false });
    const widePort = await wide.listen(0, '0.0.0.0');
    try {
      expect(await probe(address!, widePort)).toBe('open');
    } finally {
      await wide.close();
    }
  });

  it('layertap worker --metrics-port listens on 127.0.0.1 unless --metrics-host widens it', async () => {
    worker = startCli(['worker', '--threads', '1', '--metrics-port', '0'], { REDIS_URL, LAYERTAP_PREFIX: prefix, LAYERTAP_LOG_FORMAT: 'json' });
    // 'ready' comes after the signal handlers are installed: a SIGTERM before it would kill the process outright
    await worker.waitFor('layertap worker: ready', 20_000);
    const m = /metrics at http:\/\/([^:]+):(\d+)\/metrics/.exec(worker.stderr());
    expect(m?.[1]).toBe('127.0.0.1');
    const port = Number(m![2]);
    expect(await probe('127.0.0.1', port)).toBe('open');
    expect(await probe(address!, port)).toBe('ECONNREFUSED');
    expect(await worker.stop('SIGTERM')).toBe(0);
    worker = null;
  }, 30_000);
});
