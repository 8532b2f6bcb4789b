// Shared pieces of the reliability tests: a private redis-server that can be killed and
// restarted, `layertap worker` processes whose stderr lines are timestamped, datasets, and
// readers that count every id of a run folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { writeNpy } from '../../src/sources/npy.js';
import type { LayertapClient } from '../../src/queue/client.js';
import type { RunSummary } from '../../src/queue/types.js';
import { CLI, readArrow } from '../helpers/index.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Sends PING; true on +PONG within `timeoutMs`. */
export function pingRedis(port: number, timeoutMs = 300, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = new Socket();
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.connect(port, host, () => sock.write('PING\r\n'));
    // -NOAUTH: a server with a password answers too
    sock.once('data', (d) => done(/^(\+PONG|-NOAUTH)/.test(d.toString())));
  });
}

/**
 * A redis-server of the test's own on a free loopback port, in its own folder, with an
 * append-only file fsynced on every write: after kill -9 and a restart it has every
 * acknowledged write, as a production Redis with AOF would.
 */
export class TestRedis {
  private proc: ChildProcess | null = null;
  readonly url: string;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly extra: string[],
    readonly host: string,
  ) {
    this.url = `redis://${host}:${port}`;
  }

  /** `extra` redis-server arguments override the defaults (e.g. '--maxmemory-policy', 'allkeys-lru'). */
  static async start(dir: string, extra: string[] = [], host = '127.0.0.1'): Promise<TestRedis> {
    await mkdir(dir, { recursive: true });
    const r = new TestRedis(await freePort(), dir, extra, host);
    await r.launch();
    return r;
  }

  private async launch(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      this.host,
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--maxmemory-policy',
      'noeviction',
      ...this.extra,
    ];
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const end = Date.now() + 10_000;
    while (!(await pingRedis(this.port, 300, this.host))) {
      if (proc.exitCode !== null || Date.now() > end) throw new Error(`redis-server on ${this.port} did not start: ${stderr}`);
      await sleep(30);
    }
  }

  /** kill -9: no shutdown, no final fsync beyond what appendfsync always already did. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  /** Start again on the same port and folder (it reloads its AOF). */
  async restart(): Promise<void> {
    await this.kill9();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill9();
  }
}

/** One stderr line of a process and when the test saw it. */
export interface Line {
  t: number;
  text: string;
}

/** A `layertap worker` (or other CLI) child process with timestamped stderr lines. */
export class CliProc {
  readonly lines: Line[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';

  constructor(
    readonly proc: ChildProcess,
    readonly label: string,
  ) {
    proc.stdout!.resume();
    proc.stderr!.on('data', (d: Buffer) => {
      const t = Date.now();
      const text = this.partial + d.toString();
      const parts = text.split('\n');
      this.partial = parts.pop() ?? '';
      for (const p of parts) this.lines.push({ t, text: p });
    });
    this.exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  text(): string {
    return this.lines.map((l) => l.text).join('\n');
  }

  /** The first line matching `re` (seen after `since`), waiting up to `timeoutMs`. */
  async waitFor(re: RegExp, timeoutMs = 30_000, since = 0): Promise<Line> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => l.t >= since && re.test(l.text));
      if (hit) return hit;
      if (!this.alive) throw new Error(`${this.label} exited before ${re}:\n${this.text()}`);
      if (Date.now() > end) throw new Error(`${this.label}: no ${re} within ${timeoutMs} ms:\n${this.text()}`);
      await sleep(25);
    }
  }

  /** Send a signal and wait for the exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

/** Every process a test file started, so afterAll can end them even when a test failed. */
export class ProcessSet {
  private readonly procs: CliProc[] = [];

  cli(args: string[], env: NodeJS.ProcessEnv, label = args.join(' ')): CliProc {
    const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new CliProc(proc, label);
    this.procs.push(p);
    return p;
  }

  get all(): readonly CliProc[] {
    return this.procs;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop('SIGKILL', 5000)));
  }
}

/** Row i of the deterministic test dataset (28x28x1 floats in [0, 1]). */
export function rowValue(i: number, k: number): number {
  return Math.sin(i * 0.731 + k * 0.37) * 0.5 + 0.5;
}

/** A .npy of `n` rows for the seed model; rows in `nanRows` hold a NaN (they become error rows). */
export async function writeRows(file: string, n: number, nanRows: Iterable<number> = []): Promise<void> {
  const per = 28 * 28;
  const data = new Float32Array(n * per);
  for (let i = 0; i < n; i++) for (let k = 0; k < per; k++) data[i * per + k] = rowValue(i, k);
  for (const r of nanRows) data[r * per + 100] = Number.NaN;
  await writeNpy(file, data, [n, 28, 28, 1]);
}

/** What a run folder holds, read from the files themselves (not from the manifest). */
export interface RunFolder {
  listing: string[];
  /** id -> times it appears across part files */
  featureIds: Map<string, number>;
  /** id -> times it appears across error files */
  errorIds: Map<string, number>;
  errors: Array<{ id: string; stage: string; message: string }>;
}

export async function readRunFolder(dir: string): Promise<RunFolder> {
  const entries = await readdir(dir, { withFileTypes: true });
  const listing = entries.map((e) => e.name).sort();
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  const featureIds = new Map<string, number>();
  const errorIds = new Map<string, number>();
  const errors: RunFolder['errors'] = [];
  for (const f of files) {
    if (/^part-\d+\.arrow$/.test(f)) {
      const t = await readArrow(join(dir, f));
      const col = t.getChild('id')!;
      for (let i = 0; i < t.numRows; i++) featureIds.set(String(col.get(i)), (featureIds.get(String(col.get(i))) ?? 0) + 1);
    } else if (/^errors-\d+\.arrow$/.test(f)) {
      const t = await readArrow(join(dir, f));
      for (let i = 0; i < t.numRows; i++) {
        const id = String(t.getChild('id')!.get(i));
        errorIds.set(id, (errorIds.get(id) ?? 0) + 1);
        errors.push({ id, stage: String(t.getChild('stage')!.get(i)), message: String(t.getChild('message')!.get(i)) });
      }
    }
  }
  return { listing, featureIds, errorIds, errors };
}

/** Ids that appear more than once across part and error files together. */
export function duplicates(f: RunFolder): string[] {
  const all = new Map(f.featureIds);
  for (const [id, n] of f.errorIds) all.set(id, (all.get(id) ?? 0) + n);
  return [...all].filter(([, n]) => n > 1).map(([id]) => id);
}

export async function readManifest(dir: string): Promise<
  Record<string, unknown> & {
    status: string;
    rows: number;
    errorRows: number;
    failedShards: Array<{ index: number; error: string; start?: number; rows?: number }>;
  }
> {
  return JSON.parse(await readFile(join(dir, '_manifest.json'), 'utf8'));
}

/** Poll until the run reaches a final status; tolerates a Redis that is away for a while. */
export async function waitForFinal(client: LayertapClient, runId: string, timeoutMs: number): Promise<RunSummary> {
  const end = Date.now() + timeoutMs;
  let last: RunSummary | null = null;
  while (Date.now() < end) {
    try {
      const s = await Promise.race([client.status(runId), sleep(3000).then(() => null)]);
      if (s) {
        last = s;
        if (s.status === 'committed' || s.status === 'failed' || s.status === 'partial' || s.status === 'cancelled') return s;
      }
    } catch {
      // Redis restarting: ask again
    }
    await sleep(200);
  }
  throw new Error(`run ${runId} not final within ${timeoutMs} ms; last status ${JSON.stringify(last)}`);
}

/** Parses 'layertap worker: run <id> shard <n>: started' lines. */
export function startedShard(text: string): number | null {
  const m = /shard (\d+): started/.exec(text);
  return m ? Number(m[1]) : null;
}

/** Parses 'layertap worker: run <id> shard <n>: <rows> rows' (completion) lines. */
export function finishedShard(text: string): number | null {
  const m = /shard (\d+): \d+ rows, \d+ errors/.exec(text);
  return m ? Number(m[1]) : null;
}
