import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './index.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI to completion (bounded by `timeoutMs`). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`layertap ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running CLI process (e.g. `worker`) with its output collected. */
export interface CliProcess {
  proc: ChildProcess;
  stderr: () => string;
  /** resolves when stderr contains `text` */
  waitFor: (text: string, timeoutMs?: number) => Promise<void>;
  /** send a signal and wait for exit */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.resume();
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return {
    proc,
    stderr: () => err,
    waitFor: async (text, timeoutMs = 30_000) => {
      const end = Date.now() + timeoutMs;
      while (!err.includes(text)) {
        if (proc.exitCode !== null) throw new Error(`process exited (${proc.exitCode}) before '${text}':\n${err}`);
        if (Date.now() > end) throw new Error(`no '${text}' within ${timeoutMs} ms:\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
