import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableFromIPC, type Table } from 'apache-arrow';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import type {} from './redis-setup.js';

/** The Redis every test uses: the one test/helpers/redis-setup.ts (vitest globalSetup) chose for the run. */
export function testRedisUrl(): string {
  const url = inject('redisUrl');
  if (!url) throw new Error('no Redis URL was provided to the tests: run them through vitest.config.ts, whose globalSetup chooses one');
  return url;
}

export const REDIS_URL = testRedisUrl();
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SEED = fileURLToPath(new URL('../fixtures/seed-model/', import.meta.url));
export const SEED_MODEL = join(SEED, 'tfjs', 'model.json');
export const CLI = join(ROOT, 'bin', 'layertap.js');

/** The leaf modules of the seed model, as PyTorch's named_modules() lists them (the TF.js layers add 'input' first). */
export const SEED_LEAVES: readonly string[] = [
  'conv_16.0',
  'conv_16.1',
  'conv_16.2',
  'conv_32.0',
  'conv_32.1',
  'conv_32.2',
  'linear_1.0',
  'linear_1.1',
  'linear_class.0',
  'linear_class.1',
];

/** A fresh temp directory; remove it with the returned function. */
export async function tempDir(tag = 'layertap-test-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), tag));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A key prefix of its own for one test, and a function that deletes every key under it. */
export function testPrefix(): { prefix: string; cleanup: () => Promise<void> } {
  const prefix = `lt-test-${randomBytes(4).toString('hex')}`;
  return {
    prefix,
    cleanup: async () => {
      const r = new Redis(REDIS_URL);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await r.del(...keys);
        } while (cursor !== '0');
      } finally {
        r.disconnect();
      }
    },
  };
}

/** Read an Arrow IPC file. */
export async function readArrow(path: string): Promise<Table> {
  return tableFromIPC(await readFile(path));
}

/** Column `name` of a table as an array of per-row Float32Arrays. */
export function featureRows(table: Table, name: string): Float32Array[] {
  const col = table.getChild(name);
  if (!col) throw new Error(`no column ${name}; columns: ${table.schema.fields.map((f) => f.name).join(', ')}`);
  const rows: Float32Array[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const v = col.get(i) as { toArray(): ArrayLike<number> };
    rows.push(Float32Array.from(v.toArray()));
  }
  return rows;
}

/** NHWC [h, w, c] flattened -> NCHW [c, h, w] flattened. */
export function nhwcToNchw(row: Float32Array, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(row.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[k * h * w + y * w + x] = row[(y * w + x) * c + k]!;
  return out;
}

/** Largest absolute difference between two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
