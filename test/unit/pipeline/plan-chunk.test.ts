import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJob, type JobInput } from '../../../src/config/index.js';
import { resolveJob } from '../../../src/pipeline/index.js';
import { SEED_LEAVES } from '../../helpers/index.js';
import { configError, removeTempDirs, SEED_DIR, SEED_MODEL, tempDir, TEXT_DIR } from '../../helpers/models.js';

afterAll(removeTempDirs);

const MODEL = path.join(TEXT_DIR, 'model.onnx');
const SENTENCES = path.join(TEXT_DIR, 'sentences.jsonl');

function job(over: Partial<JobInput> = {}): JobInput {
  return {
    name: 'text',
    source: { uri: SENTENCES, idColumn: 'id', inputColumn: 'text' },
    model: { uri: MODEL },
    taps: [{ layer: 'encoder.layer.3', reduce: 'mean', as: 'mean' }],
    sink: { uri: '/tmp/unused-out' },
    ...over,
  };
}

describe('preprocess.chunk in the job file', () => {
  it('refuses an overlap that is not less than tokens, naming the field', () => {
    expect(() => parseJob(job({ preprocess: { chunk: { tokens: 8, overlap: 8 } } }))).toThrow(
      'preprocess.chunk.overlap: must be less than tokens (8), or no chunk would move past the one before it',
    );
  });

  it('takes reduce: mean only', () => {
    expect(() => parseJob(job({ preprocess: { chunk: { tokens: 8, reduce: 'max' as 'mean' } } }))).toThrow(/preprocess\.chunk\.reduce/);
  });

  it('decides tokens (maxLength by default) and overlap (0), and puts them in the fingerprint', async () => {
    const plain = await resolveJob(parseJob(job()));
    const chunked = await resolveJob(parseJob(job({ preprocess: { chunk: {} } })));
    expect(chunked.text?.chunk).toEqual({ tokens: 32, overlap: 0 });
    expect(plain.text?.chunk).toBeUndefined();
    expect(chunked.fingerprint).not.toBe(plain.fingerprint);
    const mean = await resolveJob(parseJob(job({ preprocess: { chunk: { tokens: 16, overlap: 2, reduce: 'mean' } } })));
    expect(mean.text?.chunk).toEqual({ tokens: 16, overlap: 2, reduce: 'mean' });
    expect(mean.fingerprint).not.toBe(chunked.fingerprint);
  });

  it('refuses chunks longer than maxLength', async () => {
    const err = await configError(job({ preprocess: { maxLength: 16, chunk: { tokens: 24 } } }));
    expect(err.message).toBe(
      'preprocess.chunk.tokens: 24 tokens, but maxLength is 16; a chunk is embedded in one forward pass of at most maxLength tokens (raise preprocess.maxLength if the model takes more)',
    );
    expect(err.fields).toEqual(['preprocess.chunk.tokens']);
  });

  it('refuses an overlap that leaves a chunk no room to move on, counting the special tokens and the prefix', async () => {
    expect((await configError(job({ preprocess: { chunk: { overlap: 32 } } }))).message).toBe(
      'preprocess.chunk.overlap: must be less than tokens (32), or no chunk would move past the one before it',
    );
    expect((await configError(job({ preprocess: { chunk: { tokens: 6, overlap: 4 } } }))).message).toBe(
      'preprocess.chunk.tokens: 6 leaves 4 token(s) of text per chunk (6 less 2 special token(s)), not more than overlap (4)',
    );
    expect((await configError(job({ preprocess: { prefix: 'query: ', chunk: { tokens: 8, overlap: 4 } } }))).message).toMatch(
      /^preprocess\.chunk\.tokens: 8 leaves \d token\(s\) of text per chunk \(8 less 2 special token\(s\) and the prefix\), not more than overlap \(4\)$/,
    );
  });

  it('refuses reduce: mean with a tap that keeps every token', async () => {
    const err = await configError(
      job({ preprocess: { chunk: { reduce: 'mean' } }, taps: [{ layer: 'pooler' }, { layer: 'encoder.layer.3', reduce: 'none', as: 'tokens' }] }),
    );
    expect(err.message).toBe(
      'preprocess.chunk.reduce: mean averages one vector per chunk, but taps[1] (tokens) keeps every token (reduce: none); pool it (reduce: mean, cls, ...) or write a row per chunk',
    );
  });

  it('is refused for a model that does not take text', async () => {
    const err = await configError({
      name: 'images',
      source: { uri: path.join(SEED_DIR, 'input_nhwc.npy') },
      model: { uri: SEED_MODEL },
      preprocess: { chunk: { tokens: 16 } },
      taps: [{ layer: SEED_LEAVES[0]! }],
      sink: { uri: '/tmp/unused-out' },
    });
    expect(err.message).toBe('preprocess.chunk: applies to text models (which take input_ids)');
  });
});

describe('source.carry', () => {
  it("carries a text job's text column by default, and nothing with carry: []", async () => {
    const r = await resolveJob(parseJob(job()));
    expect(r.carry).toEqual([{ name: 'text', type: 'utf8', input: true }]);
    expect(r.source.carry).toEqual(['text']);
    const none = await resolveJob(parseJob(job({ source: { uri: SENTENCES, idColumn: 'id', inputColumn: 'text', carry: [] } })));
    expect(none.carry).toBeUndefined();
    expect(none.source.carry).toEqual([]);
    // the carried columns are not part of the vector space
    expect(none.fingerprint).toBe(r.fingerprint);
  });

  it('gives each column the type it is written as, and names a column that is not there with the columns that are', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'docs.jsonl');
    writeFileSync(file, JSON.stringify({ id: 'a', text: 'hello', url: 'https://a', n: 3, ok: true, tags: ['x'], later: null }) + '\n');
    const r = await resolveJob(parseJob(job({ source: { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['url', 'n', 'ok', 'later'] } })));
    expect(r.carry).toEqual([
      { name: 'url', type: 'utf8' },
      { name: 'n', type: 'float64' },
      { name: 'ok', type: 'bool' },
      { name: 'later', type: 'utf8' },
    ]);
    const missing = await configError(job({ source: { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['url', 'title'] } }));
    expect(missing.message).toBe(`source.carry[1]: no column 'title' in ${file}; columns are: 'id', 'text', 'url', 'n', 'ok', 'tags', 'later'`);
    expect(missing.fields).toEqual(['source.carry[1]']);
    expect((await configError(job({ source: { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['tags'] } }))).message).toBe(
      "source.carry[0]: column 'tags' is JSON array; carried columns hold text, numbers or booleans",
    );
    expect((await configError(job({ source: { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['id'] } }))).message).toBe(
      "source.carry[0]: 'id' is the id column, which every row has as 'id' already; carry other columns",
    );
    expect((await configError(job({ source: { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['url', 'url'] } }))).message).toBe(
      "source.carry[1]: 'url' is named twice",
    );
    expect(
      (await configError(job({ source: { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['url'] }, taps: [{ layer: 'pooler', as: 'url' }] }))).message,
    ).toBe("source.carry[0]: 'url' is also the column of taps[0]; name the tap otherwise with 'as'");
  });

  it("refuses a carried column named 'id' when another column holds the ids", async () => {
    const dir = tempDir();
    const file = path.join(dir, 'docs.jsonl');
    writeFileSync(file, JSON.stringify({ doc: 'a', id: 7, text: 'hello' }) + '\n');
    const err = await configError(job({ source: { uri: file, idColumn: 'doc', inputColumn: 'text', carry: ['id'] } }));
    expect(err.message).toBe("source.carry[0]: 'id' is the name of the output's row id column; carry other columns");
  });

  it('refuses a carried column named as a chunk column of a chunked job', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'docs.jsonl');
    writeFileSync(file, JSON.stringify({ id: 'a', text: 'hello', start: 1 }) + '\n');
    const err = await configError(job({ source: { uri: file, idColumn: 'id', inputColumn: 'text', carry: ['text', 'start'] }, preprocess: { chunk: {} } }));
    expect(err.message).toBe("source.carry[1]: 'start' is the name of a chunk column (chunk, start, end) of a chunked job; carry other columns");
  });

  it("takes a text file's one column, text, and names it when another is asked for", async () => {
    const dir = tempDir();
    const file = path.join(dir, 'lines.txt');
    writeFileSync(file, 'one\ntwo\n');
    const r = await resolveJob(parseJob(job({ source: { uri: file } })));
    expect(r.carry).toEqual([{ name: 'text', type: 'utf8', input: true }]);
    expect((await configError(job({ source: { uri: file, carry: ['body'] } }))).message).toBe(
      `source.carry[0]: no column 'body' in ${file}; a text file has one column, 'text' (each line)`,
    );
  });

  it('is refused for a source without columns', async () => {
    const err = await configError({
      name: 'images',
      source: { uri: path.join(SEED_DIR, 'input_nhwc.npy'), carry: ['label'] },
      model: { uri: SEED_MODEL },
      taps: [{ layer: SEED_LEAVES[0]! }],
      sink: { uri: '/tmp/unused-out' },
    });
    expect(err.message).toBe('source.carry: only applies to arrow, parquet, jsonl, text sources, not npy');
  });
});
