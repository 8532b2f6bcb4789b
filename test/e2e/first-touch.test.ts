import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, ROOT, tempDir, testPrefix } from '../helpers/index.js';
import { startS3Server, type S3TestServer } from '../helpers/s3.js';

interface Timed {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a shell command line in the project root, timed from spawn to exit. */
function sh(line: string, env: NodeJS.ProcessEnv): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn('sh', ['-c', line], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** The README's first command line, and from it the way it calls layertap (what comes before ` run config/...`). */
async function readmeCall(): Promise<{ line: string; call: string }> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const line = block.split('\n')[0]!.replace(/\s+#.*$/, '');
  const m = /&&\s*(.+?)\s+run config\/examples\/demo\.yaml$/.exec(line);
  if (!m) throw new Error(`the README's first line does not run the demo: ${line}`);
  return { line, call: m[1]! };
}

describe('first touch: the README way of calling layertap', () => {
  let cache: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    cache = await tempDir('layertap-npm-cache-');
  });
  afterAll(async () => {
    await cache.remove();
  });

  it('installs then runs the demo, and its call answers from the first time with an empty npm cache: under a second, nothing installed, no npm warning', async () => {
    const { line, call } = await readmeCall();
    // an npm cache of its own, as on a machine that never ran npx: a call that installs anything shows up in it
    const r = await sh(`${call} --version`, { npm_config_cache: cache.dir, npm_config_update_notifier: 'false' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(VERSION);
    expect(r.stderr).toBe('');
    expect(existsSync(join(cache.dir, '_npx')), 'the call installed the project into the npx cache').toBe(false);
    // measured 0.2-0.3 s on a 2-core host; `npx layertap` in the clone took 15 s, then 1.2 s a call
    expect(r.ms).toBeLessThan(1000);
    expect(line).toBe('npm install && npm run layertap -- run config/examples/demo.yaml');
  }, 70_000);

  it("npm knows every setting of the project and every dependency's install script is reviewed (npm 11 allowScripts)", async () => {
    const r = await sh('npm install-scripts ls', { npm_config_update_notifier: 'false' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('No packages with unreviewed install scripts.');
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
    // onnxruntime-node's script only downloads the CUDA provider: off unless asked for (README)
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    expect(existsSync(join(ROOT, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so'))).toBe(false);
  }, 30_000);
});

describe('first touch: S3 on Node 20', () => {
  let s3: S3TestServer;
  const { prefix, cleanup } = testPrefix();
  beforeAll(async () => {
    s3 = await startS3Server(['first-touch']);
  });
  afterAll(async () => {
    await cleanup();
    await s3.close();
  });

  it("a command that talks to S3 prints its result, not the AWS SDK's Node version warning", async () => {
    const r = await runCli(['runs', '--rebuild', 's3://first-touch/out', '--endpoint', s3.endpoint, '--json'], {
      REDIS_URL,
      LAYERTAP_PREFIX: prefix,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('restored 0 run record(s) from s3://first-touch/out\n');
    expect(JSON.parse(r.stdout)).toEqual({ runs: [] });
  }, 30_000);
});
