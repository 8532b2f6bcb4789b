// Reading a run folder back from its files (not its manifest) and checking the two invariants of
// docs/reliability.md against it: every row has the features of its content embedded alone, and
// every source row is in exactly one place, a part file or an errors file.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DataType, type Table } from 'apache-arrow';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { sourceRows, type DatasetKind, type ExpectedError, type Row } from './props-datasets.js';

/** A row's features: per column, its vectors (one for a fixed-size column, one per token for a ragged one). */
export type Features = Record<string, Float32Array[]>;

/** What a run folder holds. */
export interface RunFiles {
  /** ids of the part files' rows, part after part, each in file order */
  ids: string[];
  /** features of each id (the last seen, when an id is written twice) */
  features: Map<string, Features>;
  /** error rows, errors file after errors file, read through the columns `id`, `stage` and `message` */
  errors: Array<{ id: string; stage: string; message: string }>;
  /** the tap columns of the part files (not `id`, nor carried columns) */
  columns: string[];
}

// iterated, not toArray(): a float16 column's toArray() gives the raw half-float bits
function vectorsOf(table: Table, name: string, row: number): Float32Array[] {
  const field = table.schema.fields.find((f) => f.name === name)!;
  const v = table.getChild(name)!.get(row) as Iterable<unknown> | null;
  if (v === null) throw new Error(`column ${name}, row ${row} is null`);
  if (DataType.isList(field.type)) return [...v].map((tok) => Float32Array.from(tok as Iterable<number>));
  return [Float32Array.from(v as Iterable<number>)];
}

/** The rows of every `part-*` and `errors-*` file of a run folder, whatever their format. */
export async function readRunFiles(dir: string): Promise<RunFiles> {
  const names = (await readdir(dir)).sort();
  const out: RunFiles = { ids: [], features: new Map(), errors: [], columns: [] };
  for (const name of names) {
    if (/^part-\d+\.(arrow|parquet)$/.test(name)) {
      const t = await readPartFile(join(dir, name));
      // the tap columns: not the id, nor the carried source columns (layertap.column)
      const columns = t.schema.fields.filter((f) => f.name !== 'id' && !f.metadata.has('layertap.column')).map((f) => f.name);
      out.columns = columns;
      const ids = t.getChild('id')!;
      for (let i = 0; i < t.numRows; i++) {
        const id = String(ids.get(i));
        out.ids.push(id);
        out.features.set(id, Object.fromEntries(columns.map((c) => [c, vectorsOf(t, c, i)])));
      }
    } else if (/^errors-\d+\.(arrow|parquet)$/.test(name)) {
      const t = await readPartFile(join(dir, name));
      const [id, stage, message] = ['id', 'stage', 'message'].map((c) => t.getChild(c)!);
      for (let i = 0; i < t.numRows; i++) out.errors.push({ id: String(id!.get(i)), stage: String(stage!.get(i)), message: String(message!.get(i)) });
    }
  }
  return out;
}

/** The largest difference allowed between a row's features and its reference. */
export const TOLERANCE = 1e-5;

/** Where `got` departs from `want` in `columns`, or null; also reports the largest difference seen through `worst`. */
export function featureMismatch(got: Features, want: Features, columns: readonly string[], worst: { diff: number }): string | null {
  for (const c of columns) {
    const g = got[c];
    const w = want[c];
    if (!g) return `no column '${c}'`;
    if (!w) throw new Error(`the reference has no column '${c}'`);
    if (g.length !== w.length) return `'${c}' has ${g.length} vector(s), expected ${w.length}`;
    for (let v = 0; v < g.length; v++) {
      if (g[v]!.length !== w[v]!.length) return `'${c}'[${v}] has ${g[v]!.length} values, expected ${w[v]!.length}`;
      for (let k = 0; k < g[v]!.length; k++) {
        const d = Math.abs(g[v]![k]! - w[v]![k]!);
        if (!(d <= TOLERANCE)) return `'${c}'[${v}][${k}] is ${g[v]![k]}, expected ${w[v]![k]} (difference ${d.toExponential(2)})`;
        worst.diff = Math.max(worst.diff, d);
      }
    }
  }
  return null;
}

/** The reference: the features of each pool entry embedded alone, and the error each bad kind becomes. */
export interface Reference {
  features: Map<number, Features>;
  errors: Map<string, ExpectedError>;
}

/** Reads the reference run of `kind` (its rows were `rows`, written by {@link poolRows}) into a {@link Reference}. */
export async function readReference(kind: DatasetKind, rows: readonly Row[], dir: string): Promise<Reference> {
  const files = await readRunFiles(dir);
  const ref: Reference = { features: new Map(), errors: new Map() };
  for (const r of sourceRows(kind, rows)) {
    if (typeof r.cell === 'number') {
      const f = files.features.get(r.id);
      if (!f) throw new Error(`the reference run has no features for ${r.id} (${kind.describe(r.cell)})`);
      ref.features.set(r.cell, f);
    } else {
      const e = files.errors.find((x) => x.id === r.id);
      if (!e) throw new Error(`the reference run has no error row for ${r.id} (${r.cell})`);
      ref.errors.set(r.cell, { stage: e.stage, message: e.message });
    }
  }
  return ref;
}

/**
 * Problems of a run folder holding `rows`, as readable lines (none when the invariants hold):
 * the part files hold exactly the good rows, in source order, once each, each with its
 * content's reference features in `columns`; the errors files hold exactly the bad rows, once
 * each, with the stage and message the source and model give them.
 */
export function invariantProblems(
  kind: DatasetKind,
  rows: readonly Row[],
  files: RunFiles,
  ref: Reference,
  columns: readonly string[],
  worst: { diff: number } = { diff: 0 },
): string[] {
  const problems: string[] = [];
  const src = sourceRows(kind, rows);
  const good = src.filter((r) => typeof r.cell === 'number');
  const bad = src.filter((r) => typeof r.cell !== 'number');
  const want = good.map((r) => r.id);
  if (files.ids.join('\n') !== want.join('\n')) problems.push(`part files hold ids [${files.ids.join(', ')}], expected [${want.join(', ')}] in this order`);
  // errors files promise no order within a shard: compared as sorted lists, so a duplicate still shows
  const errorIds = files.errors.map((e) => e.id).sort();
  const badIds = bad.map((r) => r.id).sort();
  if (errorIds.join('\n') !== badIds.join('\n')) problems.push(`errors files hold ids [${errorIds.join(', ')}], expected [${badIds.join(', ')}]`);
  const inParts = new Set(files.ids);
  for (const id of errorIds) if (inParts.has(id)) problems.push(`${id} is both in a part file and an error row`);
  const extra = [...files.columns].sort().join(',') !== [...columns].sort().join(',');
  if (files.ids.length > 0 && extra) problems.push(`part files have columns [${files.columns.join(', ')}], expected [${columns.join(', ')}]`);
  for (const r of good) {
    const got = files.features.get(r.id);
    if (!got) continue;
    const m = featureMismatch(got, ref.features.get(r.cell as number)!, columns, worst);
    if (m) problems.push(`${r.id} (row ${r.pos}, ${kind.describe(r.cell)}): ${m}`);
  }
  for (const r of bad) {
    const e = files.errors.find((x) => x.id === r.id);
    const expected = kind.error(r.cell as Exclude<typeof r.cell, number>, r.pos) ?? ref.errors.get(r.cell as string)!;
    if (e && (e.stage !== expected.stage || e.message !== expected.message)) {
      problems.push(`error row ${r.id}: ${e.stage}: ${e.message}, expected ${expected.stage}: ${expected.message}`);
    }
  }
  return problems;
}
