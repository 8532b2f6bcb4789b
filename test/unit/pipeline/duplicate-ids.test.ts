import { tableToIPC } from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countDuplicateIds, DuplicateIdCounter, duplicateIdsWarning } from '../../../src/pipeline/duplicate-ids.js';
import { encodeRowIndex } from '../../../src/pipeline/incremental.js';
import { rowIndexKey } from '../../../src/storage/layout.js';
import { LocalSink } from '../../../src/storage/local-sink.js';
import { tempDir } from '../../helpers/index.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let sink: LocalSink;
beforeEach(async () => {
  tmp = await tempDir('layertap-dups-');
  sink = new LocalSink(tmp.dir);
});
afterEach(async () => {
  await tmp.remove();
});

const PREFIX = 'ds/0123456789abcdef/run';

/** Writes each shard's ids as its row index, as the shard writer does; returns what the shard results say. */
async function writeShards(shards: string[][]): Promise<Array<{ index: number; rows: number }>> {
  for (const [index, ids] of shards.entries()) {
    if (ids.length === 0) continue;
    await sink.put(
      rowIndexKey(PREFIX, index),
      tableToIPC(
        encodeRowIndex(
          ids,
          ids.map((id) => `xxh3-128:${id}`),
        ),
        'file',
      ),
    );
  }
  return shards.map((ids, index) => ({ index, rows: ids.length }));
}

/** The count the definition gives: rows whose id an earlier row has, and the first few such ids in order. */
function reference(ids: string[], examples = 5): { count: number; examples: string[] } {
  const seen = new Set<string>();
  const out: string[] = [];
  let count = 0;
  for (const id of ids) {
    if (!seen.has(id)) seen.add(id);
    else {
      count++;
      if (!out.includes(id) && out.length < examples) out.push(id);
    }
  }
  return { count, examples: out };
}

describe('duplicate ids within a shard', () => {
  it('counts rows whose id an earlier row has, exactly, with the first few such ids', () => {
    const c = new DuplicateIdCounter();
    expect(c.result()).toBeNull();
    c.add(['a', 'b', 'a']);
    c.add(['c', 'a', 'b', 'd', 'e', 'f', 'g', 'e', 'f', 'g', 'h', 'h']);
    expect(c.result()).toEqual({ count: 7, examples: ['a', 'b', 'e', 'f', 'g'] });
  });
});

describe('countDuplicateIds across the shards of a run', () => {
  it('counts duplicates within and across shards from the row indexes, examples in run order', async () => {
    // shard 1 holds no row (all its rows were error rows): it has no index
    const shards = [['a', 'b', 'a'], [], ['c', 'a', 'd'], ['b', 'e']];
    const results = await writeShards(shards);
    expect(await countDuplicateIds(sink, PREFIX, results)).toEqual({ count: 3, examples: ['a', 'b'] });
    expect(reference(shards.flat())).toEqual({ count: 3, examples: ['a', 'b'] });
  });

  it('counts 0 for unique ids and for a run without rows', async () => {
    expect(
      await countDuplicateIds(
        sink,
        PREFIX,
        await writeShards([
          ['1', '2'],
          ['10', '20', '3'],
        ]),
      ),
    ).toEqual({ count: 0, examples: [] });
    expect(await countDuplicateIds(sink, PREFIX, [])).toEqual({ count: 0, examples: [] });
  });

  it('agrees with the definition on 60,000 ids over 40 shards, read 3 at a time', async () => {
    // a deterministic mix: mostly unique paths; 5 ids spread over the whole run; in each shard one
    // row repeating the id of a row of the shard before
    const ids = Array.from({ length: 60_000 }, (_, i) => (i % 997 === 0 ? `dup-${i % 5}` : i % 1500 === 8 ? `img/${i - 1499}.jpg` : `img/${i}.jpg`));
    const shards = Array.from({ length: 40 }, (_, s) => ids.slice(s * 1500, (s + 1) * 1500));
    const got = await countDuplicateIds(sink, PREFIX, await writeShards(shards), { concurrency: 3 });
    const want = reference(ids);
    expect(want.count).toBeGreaterThan(90);
    expect(want.examples).toHaveLength(5);
    expect(got).toEqual(want);
  });

  it('is not counted (null) for a run larger than the bounds, or when an index does not hold the rows its shard committed', async () => {
    const results = await writeShards([
      ['a', 'b'],
      ['a', 'c'],
    ]);
    expect(await countDuplicateIds(sink, PREFIX, results, { maxRows: 3 })).toBeNull();
    expect(await countDuplicateIds(sink, PREFIX, results, { maxRows: 4 })).toEqual({ count: 1, examples: ['a'] });
    expect(await countDuplicateIds(sink, PREFIX, results, { maxShards: 1 })).toBeNull();
    expect(await countDuplicateIds(sink, PREFIX, results, { maxShards: 2 })).toEqual({ count: 1, examples: ['a'] });
    expect(await countDuplicateIds(sink, PREFIX, [...results, { index: 2, rows: 5 }])).toBeNull();
    expect(await countDuplicateIds(sink, PREFIX, [{ index: 0, rows: 3 }, results[1]!])).toBeNull();
  });

  it('words the warning with the count and the example ids', () => {
    expect(duplicateIdsWarning({ count: 3, examples: ['a', 'b "2"'] })).toBe(
      'duplicate ids: 3 row(s) carry an id that an earlier row already has, e.g. "a", "b \\"2\\""',
    );
    expect(duplicateIdsWarning({ count: 1, examples: [] })).toBe('duplicate ids: 1 row(s) carry an id that an earlier row already has');
  });
});
