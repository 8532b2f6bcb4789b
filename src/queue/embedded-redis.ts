import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private redis-server on a free loopback port, in its own temp dir, that nothing persists. */
export class EmbeddedRedis {
  private constructor(
    readonly url: string,
    private readonly proc: ChildProcess,
    private readonly dir: string,
  ) {}

  /** Start `redis-server` from PATH; rejects with advice when there is none. */
  static async start(binary = 'redis-server'): Promise<EmbeddedRedis> {
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'layertap-redis-'));
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--maxmemory-policy',
      'noeviction',
      '--protected-mode',
      'yes',
    ];
    const proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const spawned = await new Promise<Error | null>((resolve) => {
      proc.once('error', (e) => resolve(e));
      proc.once('spawn', () => resolve(null));
    });
    if (spawned) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(
        `no Redis answers at REDIS_URL or 127.0.0.1:6379, and '${binary}' could not be started (${spawned.message}). ` +
          'Install Redis (e.g. apt-get install redis-server, brew install redis) or set REDIS_URL=redis://host:port',
      );
    }
    const url = `redis://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) break;
      if (await redisAnswers(url, 300)) {
        proc.unref();
        return new EmbeddedRedis(url, proc, dir);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`the embedded redis-server did not start: ${stderr.trim() || 'no answer within 10 s'}`);
  }

  /** Stop the server and remove its directory. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** True when something at `url` answers PING within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 500): Promise<boolean> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol !== 'redis:') return false;
  return new Promise<boolean>((resolve) => {
    const sock = new Socket();
    let buf = '';
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.connect(Number(u.port || 6379), u.hostname.replace(/^\[|\]$/g, ''), () => {
      sock.write('PING\r\n');
    });
    // +PONG, or -NOAUTH when a password is needed: either way it is Redis
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH'));
    });
  });
}

async function freePort(): Promise<number> {
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
