import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Table } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { readNpy } from '../../src/sources/npy.js';
import { fromFloat16Array } from '../../src/types/float16.js';
import { maxAbsDiff, REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';

const TEXT = fileURLToPath(new URL('../fixtures/text-model/', import.meta.url));
const EXPECTED = join(TEXT, 'expected');
const HIDDEN = 32;

interface Sentence {
  id: string;
  text: string;
}

/** A row's values in a column as the file holds them: float32 values, or float16 bits. */
type Values = Float32Array | Uint16Array;

/** Per row id: the mean column's vector and the token column's tokens, as the run's part files hold them. */
async function readRun(files: string[]): Promise<{ ids: string[]; mean: Map<string, Values>; tokens: Map<string, Values[]>; tables: Table[] }> {
  const tables = await Promise.all(files.map((f) => readPartFile(f)));
  const ids: string[] = [];
  const mean = new Map<string, Values>();
  const tokens = new Map<string, Values[]>();
  for (const t of tables) {
    for (let r = 0; r < t.numRows; r++) {
      const id = String(t.getChild('id')!.get(r));
      ids.push(id);
      mean.set(id, (t.getChild('mean')!.get(r) as { toArray(): Values }).toArray().slice());
      const list = t.getChild('tokens')!.get(r) as Iterable<{ toArray(): Values }>;
      tokens.set(
        id,
        [...list].map((tok) => tok.toArray().slice()),
      );
    }
  }
  return { ids, mean, tokens, tables };
}

// Incremental runs of a text job with a ragged token column: unchanged rows' token lists are
// copied from the base run as they are, in float32 and float16, Arrow and Parquet parts.
describe('incremental runs of a text model with a token column', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };
  let sentences: Sentence[];
  let expectedTokens: Float32Array;
  let lengths: number[];

  beforeAll(async () => {
    tmp = await tempDir();
    sentences = (await readFile(join(TEXT, 'sentences.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Sentence);
    expectedTokens = (await readNpy(join(EXPECTED, 'encoder.layer.3__tokens.npy'))).data;
    lengths = (JSON.parse(await readFile(join(EXPECTED, 'tokens.json'), 'utf8')) as { lengths: number[] }).lengths;
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  /** The fixture's PyTorch tokens of sentence `k`, [lengths[k], HIDDEN] flattened. */
  function reference(k: number): Float32Array {
    const start = lengths.slice(0, k).reduce((a, b) => a + b, 0) * HIDDEN;
    return expectedTokens.subarray(start, start + lengths[k]! * HIDDEN);
  }

  const cases = [
    { dtype: 'float32', format: 'arrow' },
    { dtype: 'float16', format: 'parquet' },
  ] as const;

  it.each(cases)('carries unchanged rows token lists over ($dtype, $format parts)', async ({ dtype, format }) => {
    const file = join(tmp.dir, `sentences-${dtype}.jsonl`);
    const job = (incremental: boolean, sink = 'out') =>
      parseJob({
        name: `inc-text-${dtype}`,
        source: { uri: file, idColumn: 'id', inputColumn: 'text' },
        model: { uri: join(TEXT, 'model.onnx') },
        taps: [
          { layer: 'encoder.layer.3', reduce: 'mean', as: 'mean', dtype },
          { layer: 'encoder.layer.3', reduce: 'none', as: 'tokens', dtype },
        ],
        batchSize: 2,
        // shards of 4: one mixes carried and computed rows, one is only carried rows, one ends with a new row
        shardSize: 4,
        incremental,
        sink: { uri: join(tmp.dir, `${sink}-${dtype}`), format },
      });
    await writeFile(file, sentences.map((s) => JSON.stringify(s)).join('\n') + '\n');
    const first = await runJob(job(true), { settings, threads: 2 });
    expect(first.status).toBe('committed');
    const v1 = await readRun(first.output.files);
    expect(v1.ids).toEqual(sentences.map((s) => s.id));

    // s003 changed, s005 removed, s010 added
    const edited = sentences
      .filter((s) => s.id !== 's005')
      .map((s) => (s.id === 's003' ? { id: 's003', text: 'The river is cold under the old stone bridge.' } : s))
      .concat([{ id: 's010', text: 'Workers read the queue and write the vectors.' }]);
    await writeFile(file, edited.map((s) => JSON.stringify(s)).join('\n') + '\n');
    const second = await runJob(job(true), { settings, threads: 2 });
    expect(second.status).toBe('committed');
    expect(second.rows).toBe(10);
    expect(second.errorRows).toBe(0);
    const m2 = JSON.parse(await readFile(second.output.manifest!, 'utf8')) as { incremental: unknown };
    expect(m2.incremental).toEqual({ baseRunId: first.runId, carriedRows: 8, embeddedRows: 2 });
    const v2 = await readRun(second.output.files);
    expect(v2.ids).toEqual(edited.map((s) => s.id));
    const tokens = v2.tables[0]!.schema.fields.find((f) => f.name === 'tokens')!;
    expect(String(tokens.type)).toBe(`List<FixedSizeList[${HIDDEN}]<${dtype === 'float16' ? 'Float16' : 'Float32'}>>`);

    // what a fresh, full run writes
    const full = await runJob(job(false, 'full'), { settings, threads: 2 });
    expect(full.status).toBe('committed');
    const vf = await readRun(full.output.files);
    expect(vf.ids).toEqual(v2.ids);
    const close = dtype === 'float16' ? 1e-2 : 1e-5;
    const asFloats = (v: Values): Float32Array => (v instanceof Uint16Array ? fromFloat16Array(v) : v);
    for (const id of v2.ids) {
      const got = v2.tokens.get(id)!;
      expect(got.length, id).toBe(vf.tokens.get(id)!.length);
      if (id === 's003') {
        expect(got.length).not.toBe(v1.tokens.get(id)!.length); // its new text, embedded
      } else if (id !== 's010') {
        // carried: bit for bit what the first run wrote
        expect(got, id).toEqual(v1.tokens.get(id));
        expect(v2.mean.get(id), id).toEqual(v1.mean.get(id));
      }
      expect(maxAbsDiff(asFloats(concat(got)), asFloats(concat(vf.tokens.get(id)!))), id).toBeLessThanOrEqual(close);
      expect(maxAbsDiff(asFloats(v2.mean.get(id)!), asFloats(vf.mean.get(id)!)), id).toBeLessThanOrEqual(close);
      // the fixture's PyTorch capture, for the sentences it has
      const k = sentences.findIndex((s) => s.id === id);
      if (k >= 0 && id !== 's003') expect(maxAbsDiff(asFloats(concat(got)), reference(k)), id).toBeLessThanOrEqual(close);
    }
  });
});

function concat(items: Values[]): Values {
  const out = items[0] instanceof Uint16Array ? new Uint16Array(items.length * HIDDEN) : new Float32Array(items.length * HIDDEN);
  items.forEach((v, i) => out.set(v, i * HIDDEN));
  return out;
}
