import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedJob } from '../../../src/config/resolved.js';
import { finalizeRun, MANIFEST_INLINE_SHARDS } from '../../../src/pipeline/finalize.js';
import type { RunRecord, RunRecordStore, RunSpec, ShardResult } from '../../../src/pipeline/types.js';
import { tempDir } from '../../helpers/index.js';

/** Keeps the last ending, as the run lifecycle would apply it. */
class Patches implements RunRecordStore {
  last: Partial<RunRecord> = {};
  async end(_runId: string, status: RunRecord['status'], patch: Partial<RunRecord>): Promise<unknown> {
    this.last = { ...patch, status };
    return null;
  }
}

const result = (index: number, out: string): ShardResult => ({
  index,
  rows: 2,
  errorRows: 0,
  file: join(out, `part-${String(index).padStart(5, '0')}.arrow`),
  errorsFile: null,
  bytes: 700,
  seconds: 0.01,
  backend: 'wasm',
  shapes: { h: [4] },
  layout: 'nhwc',
  decodeMs: 0,
  forwardMs: 1,
});

describe('finalizeRun of a large run', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(async () => tmp.remove());

  it('puts the per-shard list of more than 20,000 shards in _manifest-shards.arrow and keeps file lists out of the record', async () => {
    const n = MANIFEST_INLINE_SHARDS + 1;
    const job = {
      name: 'big',
      fingerprint: '0123456789abcdef',
      source: { uri: '/x.npy', type: 'npy' },
      model: { uri: '/m.json', backend: 'wasm', format: 'layers' },
      preprocess: null,
      taps: [{ layer: 'l', as: 'h', at: 'output', reduce: 'none', normalize: 'none', dtype: 'float32' }],
      batchSize: 2,
      shardSize: 2,
      sink: { uri: tmp.dir, format: 'arrow' },
      attempts: 3,
      incremental: false,
      onShardFailure: 'fail',
      inputShape: [4],
    } as unknown as ResolvedJob;
    const spec: RunSpec = {
      runId: '20261129T120000-b19b19',
      job,
      createdAt: Date.now(),
      trigger: 'manual',
      shards: n,
      totalRows: 2 * n,
      window: 256,
      idPlan: false,
      baseRunId: null,
    };
    const out = join(tmp.dir, 'big', job.fingerprint, spec.runId);
    const records = new Patches();
    const res = await finalizeRun(spec, { results: Array.from({ length: n }, (_, i) => result(n - 1 - i, out)), failures: [] }, records);
    expect(res.status).toBe('committed');
    const m = JSON.parse(await readFile(join(out, '_manifest.json'), 'utf8'));
    expect(m.shards).toEqual([]);
    expect(m.shardCount).toBe(n);
    expect(m.plannedShards).toBe(n);
    // named relative to the run folder, as the part files are
    expect(m.shardsFile).toBe('_manifest-shards.arrow');
    expect(m.rows).toBe(2 * n);
    const t = tableFromIPC(await readFile(join(out, m.shardsFile)));
    expect(t.numRows).toBe(n);
    expect(t.getChild('index')!.get(0)).toBe(0);
    expect(t.getChild('index')!.get(n - 1)).toBe(n - 1);
    expect(t.getChild('file')!.get(20_000)).toBe('part-20000.arrow');
    expect(records.last.status).toBe('committed');
    expect(records.last.files).toEqual([]);
    expect(records.last.rows).toBe(2 * n);
  }, 60_000);
});
