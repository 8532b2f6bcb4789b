import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { loadTfjs } from './tfjs.js';

/** The TF.js backends this package can select, in the order `auto` tries them. */
export const TFJS_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type TfjsBackendName = (typeof TFJS_BACKENDS)[number];

function isTfjsBackend(name: string): name is TfjsBackendName {
  return (TFJS_BACKENDS as readonly string[]).includes(name);
}
// a variable specifier keeps TypeScript from requiring the optional package at compile time
const TFJS_NODE: string = '@tensorflow/tfjs-node';

const require = createRequire(import.meta.url);

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function useTensorflow(): Promise<void> {
  const { core } = await loadTfjs();
  if (!tfjsNodeInstalled()) {
    throw new Error(`backend 'tensorflow' needs ${TFJS_NODE}, which is not installed: npm install ${TFJS_NODE} (needs internet at install)`);
  }
  try {
    await import(TFJS_NODE);
  } catch (err) {
    throw new Error(`backend 'tensorflow': ${TFJS_NODE} is installed but failed to load: ${message(err)}`);
  }
  if (core.findBackendFactory('tensorflow') == null) {
    // tfjs-node registered itself with a different copy of tfjs-core than the one this package uses
    throw new Error(
      `backend 'tensorflow': ${TFJS_NODE} loaded but did not register with this @tensorflow/tfjs-core; ` +
        `install a ${TFJS_NODE} version matching @tensorflow/tfjs-core ${core.version_core}`,
    );
  }
  if (!(await core.setBackend('tensorflow'))) {
    throw new Error(`backend 'tensorflow': ${TFJS_NODE} failed to initialise (see the warning above)`);
  }
}

/** Folder holding the wasm backend's .wasm binaries, next to its Node entry file. */
export function wasmBinaryDir(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep;
}

/** Tells the wasm backend where its binaries are; allowed once per thread, before the backend starts. */
async function setWasmPaths(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dir = wasmBinaryDir();
  if (!existsSync(path.join(dir, 'tfjs-backend-wasm.wasm'))) {
    throw new Error(`backend 'wasm': the .wasm binaries are missing from ${dir}; reinstall @tensorflow/tfjs-backend-wasm`);
  }
  // Node reads the binary with fs from this prefix; a plain folder path (not a URL) is what its loader expects
  wasm.setWasmPaths(dir);
}

async function useWasm(): Promise<void> {
  const { core } = await loadTfjs();
  const dir = wasmBinaryDir();
  const exceptionBefore = new Set(process.listeners('uncaughtException'));
  const rejectionBefore = new Set(process.listeners('unhandledRejection'));
  const ok = await core.setBackend('wasm');
  // The Emscripten runtime installs process handlers that rethrow every error, which would turn a
  // rejection the caller handles later into a crash of the whole thread; the backend needs none of them.
  for (const listener of process.listeners('uncaughtException')) {
    if (!exceptionBefore.has(listener)) process.removeListener('uncaughtException', listener);
  }
  for (const listener of process.listeners('unhandledRejection')) {
    if (!rejectionBefore.has(listener)) process.removeListener('unhandledRejection', listener);
  }
  if (!ok) throw new Error(`backend 'wasm' failed to initialise from ${dir} (see the warning above)`);
}

async function useCpu(): Promise<void> {
  const { core } = await loadTfjs();
  if (!(await core.setBackend('cpu'))) throw new Error("backend 'cpu' failed to initialise");
}

/**
 * Selects this thread's TF.js backend. TF.js keeps the backend in use per thread, in its engine;
 * the selector keeps what it learns alongside: which backend 'auto' came to, and whether the wasm
 * backend was told where its binaries are.
 */
class BackendSelector {
  private autoChoice: Promise<string> | undefined;
  private wasmPathsSet = false;

  async select(name: string): Promise<string> {
    if (name === 'onnx') {
      throw new Error("backend 'onnx' runs .onnx models; TF.js models run on auto | tensorflow | wasm | cpu");
    }
    if (name !== 'auto') {
      if (!isTfjsBackend(name)) throw new Error(`backend '${name}' is not a TF.js backend; TF.js models run on auto | ${TFJS_BACKENDS.join(' | ')}`);
      return this.use(name);
    }
    this.autoChoice ??= (async () => {
      for (const candidate of TFJS_BACKENDS) {
        try {
          return await this.use(candidate);
        } catch {
          // the next candidate is the fallback; the last one (cpu) always loads
        }
      }
      throw new Error('no TF.js backend could be initialised (tried tensorflow, wasm, cpu)');
    })();
    const chosen = await this.autoChoice;
    // another runner in this thread may have forced a different backend since
    return this.use(chosen as TfjsBackendName);
  }

  private async use(name: TfjsBackendName): Promise<string> {
    const { core } = await loadTfjs();
    // engine().backendName, unlike getBackend(), does not initialise a default backend as a side effect
    if (core.engine().backendName === name) return name;
    if (name === 'tensorflow') await useTensorflow();
    else if (name === 'wasm') {
      if (!this.wasmPathsSet) {
        await setWasmPaths();
        this.wasmPathsSet = true;
      }
      await useWasm();
    } else await useCpu();
    return core.getBackend();
  }
}

/** True when @tensorflow/tfjs-node is installed (it may still fail to load). */
export function tfjsNodeInstalled(): boolean {
  try {
    require.resolve(TFJS_NODE);
    return true;
  } catch {
    return false;
  }
}

/** The selector of this thread, as long as the thread: one, as the TF.js engine whose backend it sets. */
const selector = new BackendSelector();

/** Make `name` the thread's TF.js backend ('auto': tensorflow, else wasm, else cpu); returns the one in use. */
export function selectBackend(name: string): Promise<string> {
  return selector.select(name);
}
