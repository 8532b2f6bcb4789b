import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJob, type JobInput } from '../../../src/config/index.js';
import { resolveJob } from '../../../src/pipeline/index.js';
import { TextTokenizer } from '../../../src/preprocess/tokenize.js';
import { configError, removeTempDirs, SEED_DIR, tempDir, TEXT_DIR } from '../../helpers/models.js';

afterAll(removeTempDirs);

const TEXT = TEXT_DIR;
const MODEL = path.join(TEXT, 'model.onnx');
const SENTENCES = path.join(TEXT, 'sentences.jsonl');

function job(over: Partial<JobInput> = {}): JobInput {
  return {
    name: 'text',
    source: { uri: SENTENCES, idColumn: 'id', inputColumn: 'text' },
    model: { uri: MODEL },
    taps: [{ layer: 'encoder.layer.*', reduce: 'mean' }],
    sink: { uri: '/tmp/unused-out' },
    ...over,
  };
}

describe('tokenization of the fixture', () => {
  it('gives the ids of expected/tokens.json exactly, the long rows cut to 32 with [CLS] and [SEP] kept', () => {
    const expected = JSON.parse(readFileSync(path.join(TEXT, 'expected', 'tokens.json'), 'utf8')) as { sentences: string[]; input_ids: number[][] };
    const tok = new TextTokenizer({
      tokenizer: path.join(TEXT, 'tokenizer.json'),
      tokenizerConfig: path.join(TEXT, 'tokenizer_config.json'),
      maxLength: 32,
      prefix: '',
    });
    const batch = tok.encode(expected.sentences);
    expect(batch.ids.map((r) => [...r])).toEqual(expected.input_ids);
    expect(batch.types.every((r) => r.every((t) => t === 0))).toBe(true);
    expect(batch.truncated).toBe(2);
    // an empty row is its special tokens
    expect([...tok.encode(['']).ids[0]!]).toEqual([2, 3]);
    expect(tok.maxId()).toBe(250);
  });
});

describe('planning a text job', () => {
  it('feeds the three inputs by name, takes maxLength from tokenizer_config.json and expands a glob in layer order', async () => {
    const r = await resolveJob(parseJob(job({ taps: [{ layer: 'encoder.layer.*', reduce: 'max', as: '{name}_max' }, { layer: 'pooler' }] })));
    expect(r.text).toMatchObject({
      tokenizer: path.join(TEXT, 'tokenizer.json'),
      tokenizerConfig: path.join(TEXT, 'tokenizer_config.json'),
      maxLength: 32,
      prefix: '',
      inputs: [
        { name: 'input_ids', dtype: 'int64' },
        { name: 'attention_mask', dtype: 'int64' },
        { name: 'token_type_ids', dtype: 'int64' },
      ],
    });
    expect(r.source.text).toBe(true);
    expect(r.preprocess).toBeNull();
    expect(r.taps.map((t) => [t.layer, t.as])).toEqual([
      ['encoder.layer.0', 'encoder_layer_0_max'],
      ['encoder.layer.1', 'encoder_layer_1_max'],
      ['encoder.layer.2', 'encoder_layer_2_max'],
      ['encoder.layer.3', 'encoder_layer_3_max'],
      ['pooler', 'pooler'],
    ]);
  });

  it('puts the tokenizer, maxLength and prefix into the fingerprint', async () => {
    const base = (await resolveJob(parseJob(job()))).fingerprint;
    const prefix = (await resolveJob(parseJob(job({ preprocess: { prefix: 'passage: ' } })))).fingerprint;
    const length = (await resolveJob(parseJob(job({ preprocess: { maxLength: 16 } })))).fingerprint;
    const dir = tempDir('layertap-text-tok-');
    const changed = JSON.parse(readFileSync(path.join(TEXT, 'tokenizer.json'), 'utf8')) as { truncation: { max_length: number } };
    changed.truncation.max_length = 31;
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(changed));
    const other = (await resolveJob(parseJob(job({ model: { uri: MODEL, tokenizer: path.join(dir, 'tokenizer.json') } })))).fingerprint;
    expect(new Set([base, prefix, length, other]).size).toBe(4);
  });

  it('fails on a glob that matches nothing, naming the pattern', async () => {
    const e = await configError(job({ taps: [{ layer: 'decoder.layer.*' }] }));
    expect(e.fields).toEqual(['taps[0].layer']);
    expect(e.message).toBe(`taps[0].layer: the pattern 'decoder.layer.*' matches no layer; \`layertap layers ${MODEL}\` lists them`);
  });

  it('fails on `as` without {name} on a glob', async () => {
    const e = await configError(job({ taps: [{ layer: 'encoder.layer.*', reduce: 'mean', as: 'layers' }] }));
    expect(e.fields).toEqual(['taps[0].as']);
    expect(e.message).toContain("taps[0].as: 'layers' names one column, but layer 'encoder.layer.*' is a glob; use {name}");
  });

  it('expands a glob on an image model too, and refuses {name} without one', async () => {
    const seed = { source: { uri: path.join(SEED_DIR, 'input_nchw.npy') }, model: { uri: path.join(SEED_DIR, 'seed_model.onnx') } };
    const r = await resolveJob(parseJob(job({ ...seed, taps: [{ layer: 'conv_*', reduce: 'mean', as: 'pooled_{name}' }] })));
    expect(r.taps.map((t) => [t.layer, t.as])).toEqual([
      ['conv_16', 'pooled_conv_16'],
      ['conv_32', 'pooled_conv_32'],
    ]);
    expect(r.text).toBeUndefined();
    const e = await configError(job({ ...seed, taps: [{ layer: 'conv_16', as: '{name}_x' }] }));
    expect(e.fields).toEqual(['taps[0].as']);
    expect(e.message).toBe("taps[0].as: {name} stands for each layer a glob matches, but layer 'conv_16' is not a glob");
    const cls = await configError(job({ ...seed, taps: [{ layer: 'conv_16', reduce: 'cls' }] }));
    expect(cls.fields).toEqual(['taps[0].reduce']);
  });

  it('fails on axes with a text reduction', async () => {
    const e = await configError(job({ taps: [{ layer: 'encoder.layer.3', reduce: 'mean', axes: [1] }] }));
    expect(e.fields).toEqual(['taps[0].axes']);
    expect(e.message).toContain("taps[0].axes: on a text model reduce pools over each row's real tokens");
  });

  it('fails on a tokenizer file that does not parse, naming the file, before any work', async () => {
    const dir = tempDir('layertap-text-bad-');
    const bad = path.join(dir, 'tokenizer.json');
    writeFileSync(bad, '{"version": "1.0", "model": ');
    const e = await configError(job({ model: { uri: MODEL, tokenizer: bad } }));
    expect(e.fields).toEqual(['model.tokenizer']);
    expect(e.message).toContain(`model.tokenizer: tokenizer ${bad} is not a tokenizer file`);
    writeFileSync(bad, '{"version": "1.0"}');
    const noModel = await configError(job({ model: { uri: MODEL, tokenizer: bad } }));
    expect(noModel.message).toContain(`model.tokenizer: tokenizer ${bad} does not load`);
  });

  it('refuses image preprocessing for text, and maxLength for an image model', async () => {
    const e = await configError(job({ preprocess: { size: [224, 224] } }));
    expect(e.fields).toEqual(['preprocess.size']);
  });
});

describe('a text model and its tables', () => {
  it('fails on a tokenizer whose ids exceed the embedding table, naming the file', async () => {
    const dir = tempDir('layertap-text-vocab-');
    const big = JSON.parse(readFileSync(path.join(TEXT, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
    big.model.vocab['zzzextra'] = 300;
    const file = path.join(dir, 'tokenizer.json');
    writeFileSync(file, JSON.stringify(big));
    const e = await configError(job({ model: { uri: MODEL, tokenizer: file } }));
    expect(e.fields).toEqual(['model.tokenizer']);
    expect(e.message).toBe(
      `model.tokenizer: tokenizer ${file} gives ids up to 300, but the model's embedding table (indexed by input_ids) has 251 rows; is it the model's own tokenizer?`,
    );
  });

  it('caps maxLength at the position table and refuses a longer one asked for', async () => {
    const e = await configError(job({ preprocess: { maxLength: 65 } }));
    expect(e.fields).toEqual(['preprocess.maxLength']);
    expect(e.message).toBe("preprocess.maxLength: 65 tokens, but the model's position table has 64");
    const dir = tempDir('layertap-text-nolimit-');
    writeFileSync(
      path.join(dir, 'tokenizer.json'),
      JSON.stringify({ ...JSON.parse(readFileSync(path.join(TEXT, 'tokenizer.json'), 'utf8')), truncation: null }),
    );
    // a placeholder model_max_length means no limit; the position table still caps the default
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 1e30 }));
    const r = await resolveJob(parseJob(job({ model: { uri: MODEL, tokenizer: path.join(dir, 'tokenizer.json') } })));
    expect(r.text?.maxLength).toBe(64);
  });
});
