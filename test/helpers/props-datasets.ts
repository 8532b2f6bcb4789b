// Datasets for the property tests: each row is a cell that names an entry of a small pool of
// contents (a sentence, a tensor, an image) or a kind of bad row. A row's features depend only on
// its content, so the features of every pool entry embedded alone (the reference) say what every
// row of every generated dataset must get, and one reference run serves every case.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import fc from 'fast-check';
import sharp from 'sharp';
import type { JobInput } from '../../src/config/index.js';
import { readNpy, writeNpy } from '../../src/sources/npy.js';
import { loadParquetWasm } from '../../src/storage/index.js';
import { SEED } from './index.js';

export const TEXT_FIXTURE = join(SEED, '..', 'text-model');
export const TEXT_MODEL = join(TEXT_FIXTURE, 'model.onnx');
export const SEED_ONNX = join(SEED, 'seed_model.onnx');
export const SEED_TFJS = join(SEED, 'tfjs', 'model.json');

/** A row that cannot be embedded, by how it fails: a null text cell, a NaN input, features that overflow, a file that does not decode. */
export type Bad = 'null' | 'nan' | 'overflow' | 'corrupt';

/** A row's content: an index into the dataset's pool, or a bad row. */
export type Cell = number | Bad;

/**
 * A row of a generated dataset. `key` names it (its id or file name) and orders it: rows are
 * kept in key order, which is also their source order.
 */
export interface Row {
  key: number;
  cell: Cell;
}

/** What a source must give for a bad row. */
export interface ExpectedError {
  stage: string;
  message: string;
}

/** A row as the source gives it: its id and position. */
export interface SourceRow {
  id: string;
  pos: number;
  cell: Cell;
}

/** One kind of dataset: how its rows are written, named and failed. */
export interface DatasetKind {
  kind: 'text' | 'tensor' | 'image';
  /** pool entries; a cell's number is an index into them */
  poolSize: number;
  /** the bad rows this kind can hold */
  bad: readonly Bad[];
  /** writes the rows into `dir` (a file or a folder in it) and returns the job's `source:` */
  write(dir: string, rows: readonly Row[]): Promise<JobInput['source']>;
  /** the id the source gives the row at `pos` */
  id(row: Row, pos: number): string;
  /** the error row a bad row becomes; null when it is only known from the reference run */
  error(bad: Bad, pos: number): ExpectedError | null;
  /** a readable name of a pool entry, for failure messages */
  describe(cell: Cell): string;
  /** the rows as this kind can take them (a dataset that is refused before any work is left out this way) */
  admit(rows: Row[]): Row[];
}

/** The rows in source order, with their ids. */
export function sourceRows(kind: DatasetKind, rows: readonly Row[]): SourceRow[] {
  return rows.map((r, pos) => ({ id: kind.id(r, pos), pos, cell: r.cell }));
}

const pad = (n: number) => String(n).padStart(4, '0');

// ---- text

/** The fixture's ten sentences (plain, accented, CJK with an emoji, two over 32 tokens, a short one), then the empty string and a short row. */
export async function textPool(): Promise<string[]> {
  const lines = (await readFile(join(TEXT_FIXTURE, 'sentences.jsonl'), 'utf8')).trim().split('\n');
  return [...lines.map((l) => (JSON.parse(l) as { text: string }).text), '', 'Hi there, cat.'];
}

/**
 * A JSONL file whose first row's text is null is refused when the job is planned (`source.inputColumn:
 * column 'text' is JSON null; the model takes token ids, so it must hold text`), although a null
 * text anywhere else is an error row: the reader takes the column types from the first row only.
 * Until that is changed, generated JSONL datasets start with a text row; set this to true to
 * draw ones that start with a null text.
 */
export const JSONL_NULL_FIRST_ROW = true;

/** Rows per row group of a Parquet text table: shards and batches cross row groups. */
const ROW_GROUP = 3;

/**
 * A table of rows `{id, text}`, as JSONL or as Parquet (in row groups of {@link ROW_GROUP});
 * a `null` cell is a null text, which becomes a `read` error row.
 */
export function textKind(pool: readonly string[], format: 'jsonl' | 'parquet'): DatasetKind {
  const id = (row: Row) => `r${pad(row.key)}`;
  const text = (row: Row) => (typeof row.cell === 'number' ? pool[row.cell]! : null);
  return {
    kind: 'text',
    poolSize: pool.length,
    bad: ['null'],
    async write(dir, rows) {
      const file = join(dir, `rows.${format}`);
      if (format === 'jsonl') {
        await writeFile(file, rows.map((r) => `${JSON.stringify({ id: id(r), text: text(r) })}\n`).join(''));
      } else {
        const table = new Table({ id: vectorFromArray(rows.map(id), new Utf8()), text: vectorFromArray(rows.map(text), new Utf8()) });
        const pq = await loadParquetWasm();
        const props = new pq.WriterPropertiesBuilder().setMaxRowGroupSize(ROW_GROUP).build();
        await writeFile(file, pq.writeParquet(pq.Table.fromIPCStream(tableToIPC(table, 'stream')), props));
      }
      return { uri: file, idColumn: 'id', inputColumn: 'text' };
    },
    id,
    error: (_bad, pos) => ({ stage: 'read', message: `row ${pos}: text is null` }),
    describe: (cell) => (typeof cell === 'number' ? JSON.stringify(pool[cell]!.slice(0, 24)) : cell),
    admit: (rows) => (format !== 'jsonl' || JSONL_NULL_FIRST_ROW || rows[0]?.cell !== 'null' ? rows : [{ key: rows[0]!.key, cell: 0 }, ...rows.slice(1)]),
  };
}

// ---- tensors

export const TENSOR_ROW = 28 * 28;
const NAN_AT = 100;

/** Rows for the seed model (one channel, so NCHW and NHWC lay them out alike): the three PyTorch inputs of the fixture, then five patterns. */
export async function tensorPool(): Promise<Float32Array[]> {
  const fixture = (await readNpy(join(SEED, 'input_nchw.npy'))).data;
  const rows = [0, 1, 2].map((i) => fixture.slice(i * TENSOR_ROW, (i + 1) * TENSOR_ROW));
  for (let p = 0; p < 5; p++) rows.push(Float32Array.from({ length: TENSOR_ROW }, (_, k) => Math.sin(p * 0.731 + k * (0.05 + p * 0.09)) * 0.5 + 0.5));
  return rows;
}

/**
 * A `.npy` of rows for the seed model, [N, 1, 28, 28] for ONNX or [N, 28, 28, 1] for TF.js;
 * ids are row positions. A `nan` row holds one NaN (an `input` error row); an `overflow` row
 * is finite but so large that its features are not (a `features` error row).
 */
export function tensorKind(pool: readonly Float32Array[], layout: 'nchw' | 'nhwc'): DatasetKind {
  return {
    kind: 'tensor',
    poolSize: pool.length,
    bad: ['nan', 'overflow'],
    async write(dir, rows) {
      const data = new Float32Array(rows.length * TENSOR_ROW);
      rows.forEach((r, i) => {
        if (typeof r.cell === 'number') data.set(pool[r.cell]!, i * TENSOR_ROW);
        else if (r.cell === 'overflow') data.fill(3e38, i * TENSOR_ROW, (i + 1) * TENSOR_ROW);
        else {
          data.set(pool[0]!, i * TENSOR_ROW);
          data[i * TENSOR_ROW + NAN_AT] = Number.NaN;
        }
      });
      const file = join(dir, 'rows.npy');
      await writeNpy(file, data, layout === 'nchw' ? [rows.length, 1, 28, 28] : [rows.length, 28, 28, 1]);
      return { uri: file };
    },
    id: (_row, pos) => String(pos),
    error: (bad) =>
      bad === 'overflow'
        ? { stage: 'features', message: 'features contain NaN or Inf' }
        : { stage: 'input', message: `input value ${NAN_AT} of ${TENSOR_ROW} is NaN; NaN and Inf inputs give meaningless features` },
    describe: (cell) => (typeof cell === 'number' ? `tensor ${cell}` : cell),
    admit: (rows) => rows,
  };
}

// ---- images

/** An encoded picture and its file extension. */
export interface PoolImage {
  bytes: Buffer;
  ext: 'png' | 'jpg';
}

/** Eight small pictures: RGB and grey, PNG and JPEG, of several sizes (each is resized and turned grey for the seed model). */
export async function imagePool(): Promise<PoolImage[]> {
  const out: PoolImage[] = [];
  for (let i = 0; i < 8; i++) {
    const w = 20 + i * 6;
    const h = 24 + ((i * 5) % 17);
    const channels = i % 3 === 2 ? 1 : 3;
    const raw = Buffer.alloc(w * h * channels);
    for (let p = 0; p < w * h; p++) for (let c = 0; c < channels; c++) raw[p * channels + c] = (p * (i + 3 + c * 2) + i * 40 + c * 70) % 256;
    const img = sharp(raw, { raw: { width: w, height: h, channels } });
    const ext = i % 2 ? 'jpg' : 'png';
    out.push({ bytes: ext === 'png' ? await img.png().toBuffer() : await img.jpeg().toBuffer(), ext });
  }
  return out;
}

const CORRUPT = Buffer.from('\x89PNG\r\n\x1a\n this is not really a png');

/** A folder of image files named `img-<key>.<ext>` (ids are those names); a `corrupt` row is a PNG that does not decode (a `decode` error row). */
export function imageKind(pool: readonly PoolImage[]): DatasetKind {
  const name = (row: Row) => `img-${pad(row.key)}.${typeof row.cell === 'number' ? pool[row.cell]!.ext : 'png'}`;
  return {
    kind: 'image',
    poolSize: pool.length,
    bad: ['corrupt'],
    async write(dir, rows) {
      const folder = join(dir, 'images');
      await rm(folder, { recursive: true, force: true });
      await mkdir(folder, { recursive: true });
      for (const r of rows) await writeFile(join(folder, name(r)), typeof r.cell === 'number' ? pool[r.cell]!.bytes : CORRUPT);
      return { uri: folder };
    },
    id: name,
    // the decoder's words are taken from the reference run
    error: () => null,
    describe: (cell) => (typeof cell === 'number' ? `image ${cell} (${pool[cell]!.ext})` : cell),
    admit: (rows) => rows,
  };
}

// ---- generated datasets and their edits

/** The rows of a dataset holding each pool entry once, then each bad kind once: what the reference run embeds. */
export function poolRows(kind: DatasetKind): Row[] {
  const cells: Cell[] = [...Array.from({ length: kind.poolSize }, (_, i) => i), ...kind.bad];
  return cells.map((cell, i) => ({ key: 10 * i + 5, cell }));
}

/** A cell: mostly pool entries, sometimes a bad row. */
export function cellArb(kind: DatasetKind): fc.Arbitrary<Cell> {
  return fc.oneof({ arbitrary: fc.integer({ min: 0, max: kind.poolSize - 1 }), weight: 4 }, { arbitrary: fc.constantFrom<Cell>(...kind.bad), weight: 1 });
}

/** Datasets of 1 to `maxRows` rows (before {@link DatasetKind.admit}). */
export function rowsArb(kind: DatasetKind, maxRows: number): fc.Arbitrary<Row[]> {
  return fc.array(cellArb(kind), { minLength: 1, maxLength: maxRows }).map((cells) => cells.map((cell, i) => ({ key: 10 * i + 5, cell })));
}

/** What happens to a row between two runs: kept, given another content, or removed. */
export type RowEdit = 'keep' | 'drop' | { set: Cell };

/** Changes to a dataset: one edit per row (rows past the list are kept), and rows inserted before position `at`. */
export interface Edits {
  rows: RowEdit[];
  insert: Array<{ at: number; cell: Cell }>;
}

export function editsArb(kind: DatasetKind, maxRows: number): fc.Arbitrary<Edits> {
  const edit: fc.Arbitrary<RowEdit> = fc.oneof(
    { arbitrary: fc.constant('keep' as const), weight: 4 },
    { arbitrary: fc.record({ set: cellArb(kind) }), weight: 2 },
    { arbitrary: fc.constant('drop' as const), weight: 1 },
  );
  return fc.record({
    rows: fc.array(edit, { maxLength: maxRows }),
    insert: fc.array(fc.record({ at: fc.nat({ max: maxRows }), cell: cellArb(kind) }), { maxLength: 4 }),
  });
}

/**
 * The dataset after `edits`. Inserted rows take keys between their neighbours', so that the
 * order of keys stays the source order (a folder lists files by name). A dataset left without
 * rows keeps its first one: a source must have a row to be planned at all.
 */
export function applyEdits(kind: DatasetKind, rows: readonly Row[], edits: Edits): Row[] {
  const out: Row[] = [];
  rows.forEach((r, i) => {
    const e = edits.rows[i] ?? 'keep';
    if (e === 'keep') out.push(r);
    else if (e !== 'drop') out.push({ key: r.key, cell: e.set });
  });
  const used = new Map<number, number>();
  for (const ins of edits.insert) {
    const slot = Math.min(ins.at, rows.length);
    const n = used.get(slot) ?? 0;
    used.set(slot, n + 1);
    // keys 10 * slot + 0..4 sort after row slot - 1 (key 10 * slot - 5) and before row slot (10 * slot + 5)
    out.push({ key: 10 * slot + n, cell: ins.cell });
  }
  out.sort((a, b) => a.key - b.key);
  return kind.admit(out.length > 0 ? out : [rows[0]!]);
}

/** `[3, null, 10]`-style list of a dataset's cells, for failure messages. */
export function describeRows(kind: DatasetKind, rows: readonly Row[]): string {
  return `${rows.length} rows [${rows.map((r) => kind.describe(r.cell)).join(', ')}]`;
}
