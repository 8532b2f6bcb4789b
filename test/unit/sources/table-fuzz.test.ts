import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isPermanent } from '../../../src/types/errors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSource } from '../../../src/sources/index.js';
import type { ShardSpec, SourceSpec, TableFormat } from '../../../src/sources/index.js';
import {
  arrowMutants,
  FUZZ_ROWS,
  FUZZ_VALUES,
  jsonlMutants,
  jsonlWithLongLine,
  parquetMutants,
  pixel,
  validArrowFile,
  validArrowStream,
  validJsonl,
  validParquet,
} from '../../helpers/table-fuzz.js';
import type { Mutant } from '../../helpers/table-fuzz.js';

// Damaged tables through the readers, as a run uses them: check + rowShape + plan (what
// `enqueue` does), then every shard read (what a worker does). Each mutant must either be refused
// with a clean one-line Error, or have every shard yield exactly its planned rows (some of them
// error rows) or fail with a clean one-line Error that is not retried. Never a hang.
// LAYERTAP_FUZZ_REPORT=1 prints what became of each mutant.

const SHARD = 10;
/** per mutant: plan and read of a table of a few dozen KB take milliseconds */
const BOUND_MS = 5_000;
/** no damaged copy of a 24-row table holds anywhere near this many rows: planning more means a stored count was trusted */
const MAX_PLANNED = 1_000;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-fuzz-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A broken expectation of the test itself, as opposed to an error the reader threw. */
class FuzzFailure extends Error {}

interface Outcome {
  /** the message of a refusal at plan time (the job fails before any work) */
  refused: string | null;
  planned: number;
  rows: number;
  errorRows: number;
  /** shards that failed while being read: their rows are not committed */
  failed: Array<{ index: number; count: number; message: string }>;
}

function expectClean(err: unknown, what: string): string {
  if (err instanceof FuzzFailure) throw err;
  expect(err, what).toBeInstanceOf(Error);
  const message = (err as Error).message;
  expect(message.length, `${what}: empty message`).toBeGreaterThan(0);
  expect(message, `${what}: one line`).not.toMatch(/[\r\n]/);
  expect(message, `${what}: no stack`).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
  expect(message.length, `${what}: ${message}`).toBeLessThan(1_000);
  return message;
}

async function withinBound<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FuzzFailure(`${what}: no answer within ${BOUND_MS} ms`)), BOUND_MS);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function exercise(file: string, type: TableFormat, extra: Partial<SourceSpec>): Promise<Outcome> {
  const out: Outcome = { refused: null, planned: 0, rows: 0, errorRows: 0, failed: [] };
  const spec: SourceSpec = { uri: file, type, idColumn: 'id', inputColumn: 'pixels', ...extra };
  const planner = await createSource(spec);
  const shards: ShardSpec[] = [];
  try {
    await planner.check();
    await planner.rowShape();
    for await (const s of planner.plan(SHARD)) {
      // shards travel through the queue as JSON
      shards.push(JSON.parse(JSON.stringify(s)) as ShardSpec);
      out.planned += s.count;
      if (out.planned > MAX_PLANNED) throw new FuzzFailure(`planned more than ${MAX_PLANNED} rows`);
    }
  } catch (err) {
    out.refused = expectClean(err, 'refusal');
    // the job fails before any work, naming the file
    expect(out.refused).toContain(path.basename(file));
    return out;
  } finally {
    await planner.close();
  }
  // each shard on a source of its own, as a worker builds one per shard
  for (const shard of shards) {
    const source = await createSource(spec);
    let rows = 0;
    let errorRows = 0;
    try {
      for await (const row of source.read(shard)) {
        if (rows + errorRows >= shard.count) throw new FuzzFailure(`shard ${shard.index} yields more than its ${shard.count} rows`);
        if (row.kind === 'error') {
          errorRows++;
          expectClean(new Error(row.message), `error row ${row.id}`);
        } else {
          rows++;
        }
      }
      if (rows + errorRows !== shard.count) throw new FuzzFailure(`shard ${shard.index} yields ${rows + errorRows} rows, planned ${shard.count}`);
      out.rows += rows;
      out.errorRows += errorRows;
    } catch (err) {
      const message = expectClean(err, `shard ${shard.index}`);
      // damage found while reading is not worth a retry: it would be found again
      expect(isPermanent(err), message).toBe(true);
      out.failed.push({ index: shard.index, count: shard.count, message });
    } finally {
      await source.close();
    }
  }
  return out;
}

async function run(mutant: Mutant, ext: string, type: TableFormat, extra: Partial<SourceSpec> = {}): Promise<Outcome> {
  const file = path.join(tmp, `${mutant.name.replace(/[^A-Za-z0-9]+/g, '-')}.${ext}`);
  await writeFile(file, mutant.bytes);
  try {
    const o = await withinBound(exercise(file, type, extra), mutant.name);
    if (process.env.LAYERTAP_FUZZ_REPORT) report(ext, mutant.name, o);
    // committed rows + error rows + rows of failed shards = planned rows
    expect(o.rows + o.errorRows + o.failed.reduce((a, f) => a + f.count, 0)).toBe(o.planned);
    return o;
  } finally {
    await rm(file, { force: true });
  }
}

/** One line per mutant on stdout (LAYERTAP_FUZZ_REPORT=1): what became of it. */
function report(ext: string, name: string, o: Outcome): void {
  const what = o.refused
    ? `refused: ${o.refused.replace(tmp, '')}`
    : `${o.rows} rows + ${o.errorRows} error rows of ${o.planned} planned${o.failed.length ? `; failed shards: ${o.failed.map((f) => `#${f.index} ${f.message.replace(tmp, '')}`).join('; ')}` : ''}`;
  process.stdout.write(`${ext} | ${name} | ${what}\n`);
}

const PARQUET = await validParquet();

describe.each([
  ['Arrow IPC file', 'arrow', 'arrow', validArrowFile],
  ['Arrow IPC stream', 'arrows', 'arrow', validArrowStream],
] as const)('%s', (_, ext, type, valid) => {
  it('reads the valid table exactly', async () => {
    const o = await run({ name: 'valid', bytes: valid() }, ext, type);
    expect(o).toEqual({ refused: null, planned: FUZZ_ROWS, rows: FUZZ_ROWS, errorRows: 0, failed: [] });
  });

  it.each(arrowMutants(valid()).map((m) => [m.name, m] as const))('%s', async (_name, mutant) => {
    await run(mutant, ext, type);
  });
});

describe('Parquet', () => {
  it('reads the valid table exactly', async () => {
    const o = await run({ name: 'valid', bytes: PARQUET }, 'parquet', 'parquet');
    expect(o).toEqual({ refused: null, planned: FUZZ_ROWS, rows: FUZZ_ROWS, errorRows: 0, failed: [] });
  });

  it.each(parquetMutants(PARQUET).map((m) => [m.name, m] as const))('%s', async (_name, mutant) => {
    await run(mutant, 'parquet', 'parquet');
  });
});

describe('JSONL', () => {
  it('reads the valid table exactly, values included', async () => {
    const file = path.join(tmp, 'valid.jsonl');
    await writeFile(file, validJsonl());
    const src = await createSource({ uri: file, inputColumn: 'pixels' });
    const rows = [];
    for await (const s of src.plan(SHARD)) for await (const r of src.read(s)) rows.push(r);
    await src.close();
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: FUZZ_ROWS }, (_, r) => `row-${r}`));
    const last = rows[FUZZ_ROWS - 1]!;
    expect(last.kind === 'tensor' && last.data.length).toBe(FUZZ_VALUES);
    expect(last.kind === 'tensor' && last.data[5]).toBeCloseTo(pixel(FUZZ_ROWS - 1, 5), 4);
  });

  it.each(jsonlMutants(validJsonl()).map((m) => [m.name, m] as const))('%s', async (_name, mutant) => {
    const o = await run(mutant, 'jsonl', 'jsonl');
    // lines have no structure to break: only a file none of whose first rows is an object is refused
    if (o.refused === null) expect(o.failed).toEqual([]);
  });

  describe('long lines', () => {
    const MiB = 1024 * 1024;
    const errorOf = async (bytes: Uint8Array, extra: Partial<SourceSpec>, name: string) => {
      const file = path.join(tmp, `${name}.jsonl`);
      await writeFile(file, bytes);
      try {
        const o = await withinBound(exercise(file, 'jsonl', extra), name);
        expect(o).toMatchObject({ refused: null, planned: FUZZ_ROWS, failed: [] });
        const src = await createSource({ uri: file, inputColumn: 'pixels', ...extra });
        const errors = [];
        for await (const s of src.plan(SHARD)) for await (const r of src.read(s)) if (r.kind === 'error') errors.push(r);
        await src.close();
        return errors;
      } finally {
        await rm(file, { force: true });
      }
    };

    it('a line of 40 MB is read under the default limit (64 MiB), and is an error row over a lower one', async () => {
      const bytes = jsonlWithLongLine(5, 40 * MiB);
      const under = await errorOf(bytes, {}, 'long-40');
      // the row parses; its one value does not fit the row shape
      expect(under.map((r) => [r.id?.length, r.message])).toEqual([[40 * MiB - 40, 'row 5: pixels has 1 values, expected 784 (row shape [784])']]);
      const over = await errorOf(bytes, { maxLineBytes: MiB }, 'long-40-capped');
      expect(over).toHaveLength(1);
      // the line is not read, so neither is its id
      expect(over[0]).toMatchObject({ id: null, stage: 'read' });
      expect(over[0]!.message).toMatch(
        /^row 5: pixels: line at byte \d+ is 41943\d\d\d bytes, more than source\.maxLineBytes \(1048576\); raise source\.maxLineBytes to read it$/,
      );
    }, 30_000);

    it('a line of 70 MB is an error row under the default limit, also as the last line without a newline', async () => {
      for (const newline of [true, false]) {
        const errors = await errorOf(jsonlWithLongLine(newline ? 5 : FUZZ_ROWS - 1, 70 * MiB, newline), {}, `long-70-${newline}`);
        expect(errors).toHaveLength(1);
        expect(errors[0]!.message).toMatch(/ is 73400\d\d\d bytes, more than source\.maxLineBytes \(67108864\); raise source\.maxLineBytes to read it$/);
      }
    }, 30_000);
  });
});
