import { open } from 'node:fs/promises';
import { defaultSources, type ReadHint, type ShardSpec, type Source, type SourceEntry, type SourceRow } from '../../src/index.js';
import { writeNpy } from '../../src/sources/npy.js';

/** The .npy source kind with some of its methods replaced: a slow listing, a shard that cannot be read. */
export function npyWith(override: (source: Source) => Partial<Source>): SourceEntry {
  const npy = defaultSources().get('npy');
  return {
    ...npy,
    async open(spec) {
      const source = await npy.open(spec);
      const plain: Source = {
        uri: source.uri,
        type: source.type,
        rowShape: () => source.rowShape(),
        check: () => source.check(),
        count: () => source.count(),
        plan: (shardSize: number) => source.plan(shardSize),
        read: (shard: ShardSpec, hint?: ReadHint) => source.read(shard, hint),
        close: () => source.close(),
      };
      return { ...plain, ...override(source) };
    },
  };
}

/** The .npy source kind with a listing that takes `msPerShard` per shard, as a slow file system or object store would; `planned` counts the shards listed. */
export function slowNpy(msPerShard: number): { entry: SourceEntry; planned: () => number } {
  let planned = 0;
  const entry = npyWith((source) => ({
    async *plan(shardSize: number) {
      for await (const s of source.plan(shardSize)) {
        planned++;
        await new Promise((r) => setTimeout(r, msPerShard));
        yield s;
      }
    },
  }));
  return { entry, planned: () => planned };
}

/**
 * A .npy of `rows` float32 rows of `rowShape` whose data is a hole in the file (zeros, no disk
 * used): a dataset of millions of rows for planning, in a few bytes.
 */
export async function writeSparseNpy(file: string, rows: number, rowShape: readonly number[]): Promise<void> {
  // numpy's header for 0 rows, with the row count written over its padding, keeps the data aligned
  await writeNpy(file, new Float32Array(0), [0, ...rowShape]);
  const fh = await open(file, 'r+');
  try {
    const head = Buffer.alloc(256);
    const { bytesRead } = await fh.read(head, 0, 256, 0);
    const text = head.subarray(0, bytesRead).toString('latin1');
    const at = text.indexOf("'shape': (0,");
    const end = text.lastIndexOf('\n');
    const patched =
      text.slice(0, at) +
      `'shape': (${rows},` +
      text.slice(at + "'shape': (0,".length, end).replace(/ {1,}$/, (sp) => sp.slice(String(rows).length - 1)) +
      '\n';
    if (patched.length !== bytesRead) throw new Error(`writeSparseNpy ${file}: the header has no room for ${rows} rows`);
    await fh.write(Buffer.from(patched, 'latin1'), 0, patched.length, 0);
    await fh.truncate(bytesRead + rows * rowShape.reduce((a, b) => a * b, 1) * 4);
  } finally {
    await fh.close();
  }
}

/** Every item of an async iterable, in order. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A source's plan for `shardSize` and every row it reads; the shards round-trip through JSON, as they do through the queue. */
export async function readAll(src: Source, shardSize: number): Promise<{ shards: ShardSpec[]; rows: SourceRow[] }> {
  const shards = await collect(src.plan(shardSize));
  const rows: SourceRow[] = [];
  for (const s of shards) rows.push(...(await collect(src.read(JSON.parse(JSON.stringify(s)) as ShardSpec))));
  return { shards, rows };
}
