import { Field, FixedSizeList, Float32, Table, Utf8, vectorFromArray, type RecordBatch } from 'apache-arrow';
import { LanceTables } from '@layertap/lancedb-io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanceDbDestination } from '../../src/sinks/lancedb-table.js';
import type { StagedShard, TableRun } from '../../src/sinks/table-destination.js';
import { tempDir } from '../helpers/index.js';

const D = 8;

/** Row `id`'s vector in version `v` of the data: deterministic, different per id and version. */
function vec(id: string, v = 0): number[] {
  const n = Number(id.replace(/\D/g, '')) || id.length;
  return Array.from({ length: D }, (_, k) => Math.sin(n * 1.37 + k * 0.71 + v * 0.5) + (k === n % D ? 2 : 0));
}

function batch(ids: string[], v = 0, dims = D): RecordBatch {
  const type = new FixedSizeList(dims, new Field('item', new Float32(), false));
  const t = new Table({
    id: vectorFromArray(ids, new Utf8()),
    emb: vectorFromArray(
      ids.map((id) =>
        vec(id, v)
          .slice(0, dims)
          .concat(Array(Math.max(0, dims - D)).fill(0)),
      ),
      type,
    ),
  });
  return t.batches[0]!;
}

/** A run of shards of `size` rows over `ids`, version `v` of their vectors. */
function run(runId: string, ids: string[], size: number, v = 0, dims = D): TableRun {
  const shards: StagedShard[] = [];
  for (let i = 0; i * size < ids.length; i++) {
    const part = ids.slice(i * size, (i + 1) * size);
    shards.push({
      index: i,
      rows: part.length,
      async *batches() {
        // two batches per shard, as a part file with several forward passes has
        yield batch(part.slice(0, 2), v, dims);
        if (part.length > 2) yield batch(part.slice(2), v, dims);
      },
    });
  }
  return { runId, fingerprint: 'f', rows: ids.length, shards };
}

const range = (lo: number, hi: number, tag = 'r') => Array.from({ length: hi - lo }, (_, i) => `${tag}${lo + i}`);

describe('LanceDB table destination', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let db: LanceTables;
  beforeAll(async () => {
    tmp = await tempDir('layertap-lancedb-');
    db = await LanceTables.connect(tmp.dir);
  });
  afterAll(async () => {
    db.close();
    await tmp.remove();
  });

  async function tableRows(name: string): Promise<Map<string, number[]>> {
    const ids = await db.ids(name);
    const out = new Map<string, number[]>();
    for (const id of ids) out.set(id, []);
    return out;
  }

  for (const writeRows of [1000, 7]) {
    const mode = writeRows === 1000 ? 'one merge per commit' : 'writes of 7 rows';
    it(`mirrors each run: created, then upserted with changed, removed and added rows, committed twice without duplicates (${mode})`, async () => {
      const name = `t${writeRows}`;
      const dest = await LanceDbDestination.open({ uri: tmp.dir, table: name }, { writeRows });
      try {
        const first = await dest.commit(run('r1', range(0, 20), 6));
        expect(first).toMatchObject({ table: name, rows: 20, inserted: 20, updated: 0, deleted: 0 });
        // the same run again (a finalize retried): same rows, none appended twice
        const again = await dest.commit(run('r1', range(0, 20), 6));
        expect(again).toMatchObject({ rows: 20, inserted: 0, updated: 20, deleted: 0 });
        expect(await db.countRows(name)).toBe(20);

        // r0..r4 gone from the source, r5..r9 changed, r20..r22 new
        const ids2 = [...range(5, 20), ...range(20, 23)];
        const second = await dest.commit({
          ...run('r2', ids2, 6),
          shards: run('r2', ids2, 6).shards.map((s) => ({
            ...s,
            async *batches() {
              for await (const b of s.batches()) {
                const bids = Array.from({ length: b.numRows }, (_, i) => String(b.getChild('id')!.get(i)));
                const changed = bids.map((id) => Number(id.slice(1)) < 10);
                yield* [changed.some(Boolean) ? mixed(bids, changed) : b];
              }
            },
          })),
        });
        expect(second).toMatchObject({ rows: 18, inserted: 3, updated: 15, deleted: 5 });
        expect(await db.countRows(name)).toBe(18);
        expect([...(await tableRows(name)).keys()].sort()).toEqual([...ids2].sort());
        // LanceDB's own search: every row finds itself first, changed rows by their new vector
        for (const id of ids2) {
          const v = Number(id.slice(1)) < 10 ? 1 : 0;
          const hits = await db.search(name, 'emb', vec(id, v), 2, 'cosine');
          expect(hits[0]!.id, id).toBe(id);
          expect(hits[0]!.distance).toBeLessThan(1e-6);
        }
      } finally {
        await dest.close();
      }
    });
  }

  it('replaces a table whose columns differ from the run (another model), and empties it for an empty run', async () => {
    const dest = await LanceDbDestination.open({ uri: tmp.dir, table: 'shape' });
    try {
      await dest.commit(run('a', range(0, 5), 5));
      const wider = await dest.commit(run('b', range(3, 9), 5, 0, 12));
      expect(wider).toMatchObject({ rows: 6, inserted: 6, deleted: 5 });
      expect((await db.describe('shape'))!.fields).toEqual([
        { name: 'id', type: 'Utf8' },
        { name: 'emb', type: 'FixedSizeList[12]<Float32>' },
      ]);
      const empty = await dest.commit({ runId: 'c', fingerprint: 'f', rows: 0, shards: [] });
      expect(empty).toMatchObject({ rows: 0, deleted: 6 });
      expect(await db.countRows('shape')).toBe(0);
    } finally {
      await dest.close();
    }
  });

  it('writes only changed rows when the table is still at the version the last commit left, every row otherwise', async () => {
    const dest = await LanceDbDestination.open({ uri: tmp.dir, table: 'skip' }, { writeRows: 4 });
    try {
      const first = await dest.commit(run('a', range(0, 10), 4));
      const same = new Set(range(2, 10));
      // r0, r1 changed (version 1 of their vectors), r2..r9 as they were, r10 new
      const next = (): TableRun => ({
        ...run('b', range(0, 11), 4),
        shards: run('b', range(0, 11), 4).shards.map((s) => ({
          ...s,
          async *batches() {
            for await (const b of s.batches()) {
              const bids = Array.from({ length: b.numRows }, (_, i) => String(b.getChild('id')!.get(i)));
              yield mixed(
                bids,
                bids.map((id) => !same.has(id) && id !== 'r10'),
              );
            }
          },
        })),
      });
      const c = await dest.commit({ ...next(), unchanged: { version: first.version!, ids: same } });
      expect(c).toMatchObject({ rows: 11, inserted: 1, updated: 2, deleted: 0, unchanged: 8 });
      for (const id of ['r0', 'r1']) expect((await db.search('skip', 'emb', vec(id, 1), 1, 'cosine'))[0]!.id).toBe(id);
      // the table moved on since that version: nothing is taken for granted
      const stale = await dest.commit({ ...next(), unchanged: { version: first.version!, ids: same } });
      expect(stale).toMatchObject({ rows: 11, inserted: 0, updated: 11, deleted: 0, unchanged: 0 });
    } finally {
      await dest.close();
    }
  });

  it('builds the index the job asks for on each vector column after the commit', async () => {
    const ids = range(0, 300);
    for (const type of ['ivf_pq', 'hnsw_sq'] as const) {
      const dest = await LanceDbDestination.open({ uri: tmp.dir, table: `idx_${type}`, index: { type, metric: 'cosine' } });
      try {
        const c = await dest.commit(run('i', ids, 100));
        expect(c.indexes).toEqual([{ column: 'emb', type, metric: 'cosine' }]);
        expect(await db.listIndices(`idx_${type}`)).toEqual([{ name: 'emb_idx', type: type === 'ivf_pq' ? 'IvfPq' : 'IvfHnswSq', columns: ['emb'] }]);
        const hits = await db.search(`idx_${type}`, 'emb', vec('r42'), 10, 'cosine');
        expect(hits.map((h) => h.id)).toContain('r42');
      } finally {
        await dest.close();
      }
    }
    // too few rows to train an index: the commit stands, the manifest says why there is no index
    const small = await LanceDbDestination.open({ uri: tmp.dir, table: 'idx_small', index: { type: 'ivf_pq', metric: 'cosine' } });
    try {
      const c = await small.commit(run('s', range(0, 3), 3));
      expect(c.rows).toBe(3);
      expect(c.indexes).toHaveLength(1);
      expect(c.indexes[0]!.error).toMatch(/./);
    } finally {
      await small.close();
    }
  });
});

/** A batch whose rows flagged `changed` carry version 1 of their vectors. */
function mixed(ids: string[], changed: boolean[]): RecordBatch {
  const type = new FixedSizeList(D, new Field('item', new Float32(), false));
  const t = new Table({
    id: vectorFromArray(ids, new Utf8()),
    emb: vectorFromArray(
      ids.map((id, i) => vec(id, changed[i] ? 1 : 0)),
      type,
    ),
  });
  return t.batches[0]!;
}
