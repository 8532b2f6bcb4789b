import { move, transferableSymbol, valueSymbol } from 'piscina';
import { carriedCells, carriedColumnNames, ID_COLUMN, readPartFile, vectorColumn } from '../sinks/index.js';
import { createSink, type Sink, type SinkSpec } from '../storage/index.js';
import type { Cell, FindResult, Hit, NearestResult, RowsResult, ScanTask } from './scan-protocol.js';
import { TopK } from './top-k.js';
import { mapLayout, type Layout } from './map-layout.js';

// A scan thread: reads one committed part file per task (a shard's rows, so memory stays bounded
// by the shard size) and answers a lookup, a nearest-rows scan or a sample of rows.

const sinks = new Map<string, Promise<Sink>>();

function sinkOf(spec: SinkSpec): Promise<Sink> {
  const key = JSON.stringify(spec);
  let s = sinks.get(key);
  if (!s) {
    s = createSink(spec);
    sinks.set(key, s);
  }
  return s;
}

/** `result` with `buffer`'s memory transferred to the main thread instead of copied. */
function moved<T>(result: T, buffer: Float32Array): T {
  return move({ [transferableSymbol]: [buffer.buffer], [valueSymbol]: result } as unknown as Parameters<typeof move>[0]) as unknown as T;
}

async function readPart(task: Exclude<ScanTask, { kind: 'layout' }>) {
  const sink = await sinkOf(task.part.sink);
  const bytes = await sink.get(task.part.key);
  if (!bytes) throw new Error(`part file ${sink.resolve(task.part.key)} is missing`);
  const table = await readPartFile(bytes);
  const ids = table.getChild(ID_COLUMN);
  if (!ids) throw new Error(`part file ${sink.resolve(task.part.key)} has no '${ID_COLUMN}' column`);
  return { table, ids, vectors: vectorColumn(table, task.tap), carried: carriedColumnNames(table, task.taps) };
}

/** Cosine of each query (unit length) against every row, the k best per query kept. */
async function nearest(task: Extract<ScanTask, { kind: 'nearest' }>): Promise<NearestResult> {
  const { table, ids, vectors, carried } = await readPart(task);
  const { rows, dim, data } = vectors;
  const m = task.queries.length / dim;
  if (!Number.isInteger(m)) throw new Error(`queries have ${task.queries.length} values, not a multiple of the column's ${dim}`);
  const q = task.queries;
  const tops = Array.from({ length: m }, () => new TopK<number>(task.k));
  const dots = new Float64Array(m);
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let norm = 0;
    dots.fill(0);
    for (let j = 0; j < dim; j++) {
      const x = data[base + j]!;
      norm += x * x;
      for (let a = 0; a < m; a++) dots[a]! += x * q[a * dim + j]!;
    }
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let a = 0; a < m; a++) {
      const s = dots[a]! * inv;
      if (s > tops[a]!.floor) {
        const ex = task.exclude[a];
        if (ex != null && String(ids.get(r)) === ex) continue;
        tops[a]!.push(s, r);
      }
    }
  }
  const hits: Hit[][] = tops.map((t) =>
    t.sorted().map(({ score, item }) => ({ id: String(ids.get(item)), score, carried: carriedCells(table, carried, item) })),
  );
  return { rows, hits };
}

async function find(task: Extract<ScanTask, { kind: 'find' }>): Promise<FindResult> {
  const { table, ids, vectors, carried } = await readPart(task);
  for (let r = 0; r < table.numRows; r++) {
    if (String(ids.get(r)) !== task.id) continue;
    const vector = vectors.data.slice(r * vectors.dim, (r + 1) * vectors.dim);
    return moved({ found: true, rows: table.numRows, vector, carried: carriedCells(table, carried, r) }, vector);
  }
  return { found: false, rows: table.numRows };
}

async function rows(task: Extract<ScanTask, { kind: 'rows' }>): Promise<RowsResult> {
  const { table, ids, vectors, carried } = await readPart(task);
  const { dim } = vectors;
  const picked = task.rows ?? Int32Array.from({ length: table.numRows }, (_, i) => i);
  const data = new Float32Array(picked.length * dim);
  const outIds: string[] = [];
  const cells: Array<Record<string, Cell>> = [];
  for (let i = 0; i < picked.length; i++) {
    const r = picked[i]!;
    if (r < 0 || r >= table.numRows) throw new Error(`row ${r} is outside the part's ${table.numRows} rows`);
    data.set(vectors.data.subarray(r * dim, (r + 1) * dim), i * dim);
    outIds.push(String(ids.get(r)));
    cells.push(carriedCells(table, carried, r));
  }
  return moved({ ids: outIds, dim, data, carried: cells }, data);
}

/** The thread entry: one task, one part file (or one map layout). */
export default async function scan(task: ScanTask): Promise<FindResult | NearestResult | RowsResult | Layout> {
  switch (task.kind) {
    case 'layout': {
      const { kind: _kind, ...input } = task;
      const l = await mapLayout(input);
      return move({
        [transferableSymbol]: [l.x.buffer, l.y.buffer, l.neighbors.ids.buffer, l.neighbors.distances.buffer],
        [valueSymbol]: l,
      } as unknown as Parameters<typeof move>[0]) as unknown as Layout;
    }
    case 'find':
      return find(task);
    case 'nearest':
      return nearest(task);
    case 'rows':
      return rows(task);
  }
}
