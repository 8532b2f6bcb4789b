import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JobConfigError, parseJob, type JobInput } from '../../src/config/index.js';
import type { ResolvedTap } from '../../src/config/resolved.js';
import { resolveJob } from '../../src/pipeline/index.js';
import type { ModelInputs } from '../../src/models/types.js';

export const SEED_DIR = fileURLToPath(new URL('../fixtures/seed-model/', import.meta.url));
export const SEED_MODEL = path.join(SEED_DIR, 'tfjs', 'model.json');
/** The text model fixture's folder: model.onnx, tokenizer.json, sentences.jsonl, expected/. */
export const TEXT_DIR = fileURLToPath(new URL('../fixtures/text-model/', import.meta.url));

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

/** Minimal .npy reader for the fixtures: little-endian float32, C order. */
export function readNpy(file: string): NpyArray {
  const buf = readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not an .npy file`);
  const major = buf[6] ?? 0;
  const headerLen = major >= 2 ? buf.readUInt32LE(8) : buf.readUInt16LE(8);
  const headerStart = major >= 2 ? 12 : 10;
  const header = buf.toString('latin1', headerStart, headerStart + headerLen);
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(`${file}: only '<f4' is supported (${header})`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: fortran order is not supported`);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '';
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const offset = headerStart + headerLen;
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(offset + 4 * i);
  return { shape, data };
}

/** Expected hook capture for `<layer>__<at>.npy`. */
export function expected(layer: string, at: 'input' | 'output'): NpyArray {
  return readNpy(path.join(SEED_DIR, 'expected', `${layer}__${at}.npy`));
}

/** Reorder [N, H, W, C] values to [N, C, H, W]. */
export function nhwcToNchw(data: ArrayLike<number>, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let ch = 0; ch < c; ch++) {
          out[((b * c + ch) * h + y) * w + x] = data[((b * h + y) * w + x) * c + ch] ?? NaN;
        }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] ?? NaN) - (b[i] ?? NaN));
    if (!(d <= max)) max = d;
  }
  return max;
}

/** A tap as the config layer would resolve it. */
export function tap(layer: string, at: 'input' | 'output' = 'output', extra: Partial<ResolvedTap> = {}): ResolvedTap {
  return { layer, at, as: `${layer}:${at}`, reduce: 'none', normalize: 'none', dtype: 'float32', ...extra };
}

const tempRoots: string[] = [];

/** A fresh temp directory, removed by removeTempDirs(). */
export function tempDir(prefix = 'layertap-models-'): string {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  tempRoots.push(root);
  return root;
}

/** Remove every directory tempDir() made (call from afterAll). */
export function removeTempDirs(): void {
  for (const root of tempRoots.splice(0)) rmSync(root, { recursive: true, force: true });
}

/** A writable copy of the seed model's tfjs folder in a fresh temp directory. */
export function copySeedModel(): { dir: string; modelJson: string } {
  const root = tempDir();
  const dir = path.join(root, 'tfjs');
  cpSync(path.join(SEED_DIR, 'tfjs'), dir, { recursive: true });
  // fixture files are read-only; the copies are there to be modified
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(path.join(dir, f), 0o644);
  return { dir, modelJson: path.join(dir, 'model.json') };
}

/** Per-row values of row `r` of a [rows, ...] array. */
export function row(data: ArrayLike<number>, r: number, size: number): number[] {
  return Array.from({ length: size }, (_, i) => data[r * size + i] ?? NaN);
}

/** The JobConfigError that planning `input` fails with; anything else fails the test. */
export async function configError(input: JobInput): Promise<JobConfigError> {
  const err = await resolveJob(parseJob(input)).catch((e: unknown) => e);
  if (!(err instanceof JobConfigError)) throw new Error(`expected a JobConfigError, got ${String(err)}`);
  return err;
}

/** Rows of token ids padded with 0 to the longest row, with the attention mask saying which are real (a BERT-style model's inputs). */
export function tokenInputs(rows: number[][]): ModelInputs {
  const width = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * width);
  const mask = new BigInt64Array(rows.length * width);
  rows.forEach((r, i) =>
    r.forEach((id, j) => {
      ids[i * width + j] = BigInt(id);
      mask[i * width + j] = 1n;
    }),
  );
  const dims = [rows.length, width];
  return {
    input_ids: { dtype: 'int64', dims, data: ids },
    attention_mask: { dtype: 'int64', dims, data: mask },
    token_type_ids: { dtype: 'int64', dims, data: new BigInt64Array(rows.length * width) },
  };
}

/** Cosine of two vectors of the same length. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}
