import { describe, expect, it } from 'vitest';
import { defaultColumnName, JobConfigError, parseJob } from '../../../src/config/index.js';
import { computeFingerprint } from '../../../src/pipeline/index.js';

const good = {
  name: 'products',
  source: { uri: './data' },
  model: { uri: './m/model.json' },
  taps: [{ layer: 'dense_1' }],
  sink: { uri: './out' },
};

function errorOf(fn: () => unknown): JobConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof JobConfigError) return e;
    throw e;
  }
  throw new Error('expected a JobConfigError');
}

describe('job file schema', () => {
  it('applies the documented defaults', () => {
    const job = parseJob(good);
    expect(job.batchSize).toBe(32);
    expect(job.shardSize).toBe(1024);
    expect(job.model.backend).toBe('auto');
    expect(job.sink.format).toBe('arrow');
    expect(job.taps?.[0]).toEqual({ layer: 'dense_1', at: 'output', reduce: 'none', normalize: 'none', dtype: 'float32' });
  });

  it('names a missing field', () => {
    const { source: _s, ...rest } = good;
    const e = errorOf(() => parseJob(rest, 'job.yaml'));
    expect(e.message).toContain('invalid job file job.yaml');
    expect(e.message).toContain('source: required');
    expect(e.fields).toEqual(['source']);
  });

  it('names an unknown field with its path', () => {
    const e = errorOf(() => parseJob({ ...good, sink: { uri: './out', formt: 'arrow' } }));
    expect(e.message).toContain("unknown field 'sink.formt'");
  });

  it('suggests the field a misspelt one is near, with its path, and lists the fields when none is near', () => {
    expect(errorOf(() => parseJob({ ...good, batchsize: 16 }, 'job.yaml')).message).toBe(
      "invalid job file job.yaml:\n  - unknown field 'batchsize' (did you mean 'batchSize'?)",
    );
    const tap = errorOf(() => parseJob({ ...good, taps: [{ layer: 'a', normalise: 'l2', axis: [1] }] }));
    expect(tap.message).toBe(
      "invalid job file job:\n  - unknown fields 'taps[0].normalise' (did you mean 'taps[0].normalize'?), 'taps[0].axis' (did you mean 'taps[0].axes'?)",
    );
    expect(tap.fields).toEqual(['taps[0].normalise']);
    expect(errorOf(() => parseJob({ ...good, sink: { uri: './o', zzz: 1 } })).message).toBe(
      "invalid job file job:\n  - unknown field 'sink.zzz'; sink takes: uri, format, table, index, endpoint, region, forcePathStyle",
    );
    expect(errorOf(() => parseJob({ ...good, wibble: 1 })).message).toBe(
      "invalid job file job:\n  - unknown field 'wibble'; a job file takes: name, source, model, preprocess, taps, batchSize, shardSize, sink, incremental, attempts, onShardFailure",
    );
  });

  it('says what was given when a field has the wrong type', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ batchSize: 'sixteen' }, 'batchSize: expected a number, got the string "sixteen"'],
      [{ batchSize: 1.5 }, 'batchSize: expected a whole number, got the number 1.5'],
      [{ incremental: 'yes' }, 'incremental: expected true or false, got the string "yes"'],
      [{ taps: 'dense_1' }, 'taps: expected a list, got the string "dense_1"'],
      [{ source: './data' }, 'source: expected a mapping of fields, got the string "./data"'],
      [{ name: null }, 'name: expected a string, got null (an empty value)'],
      [{ preprocess: { size: [224, '224'] } }, 'preprocess.size[1]: expected a number, got the string "224"'],
    ];
    for (const [extra, message] of cases) {
      expect(errorOf(() => parseJob({ ...good, ...extra })).message).toBe(`invalid job file job:\n  - ${message}`);
    }
    // a missing field is still "required"
    const { sink: _s, ...noSink } = good;
    expect(errorOf(() => parseJob(noSink)).message).toBe('invalid job file job:\n  - sink: required (expected a mapping of fields)');
  });

  it('lists the choices of an enum', () => {
    const e = errorOf(() => parseJob({ ...good, taps: [{ layer: 'x', at: 'inside' }] }));
    expect(e.message).toContain('taps[0].at: invalid value; choose one of "input", "output"');
    expect(e.fields).toEqual(['taps[0].at']);
  });

  it('rejects a bad number', () => {
    const e = errorOf(() => parseJob({ ...good, batchSize: 0 }));
    expect(e.message).toMatch(/batchSize: .*>\s*0|batchSize: .*positive|batchSize: Too small/i);
  });

  it('takes size limits for input in bytes, naming the field of a bad one', () => {
    const job = parseJob({ ...good, source: { uri: './t.jsonl', maxLineBytes: 1048576, maxRowBytes: 16777216 } });
    expect(job.source).toMatchObject({ maxLineBytes: 1048576, maxRowBytes: 16777216 });
    // unset, they stay unset: the sources apply their defaults (64 MiB a line, 256 MiB a file)
    expect(parseJob(good).source).not.toHaveProperty('maxLineBytes');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ maxLineBytes: 0 }, 'source.maxLineBytes: must be a positive number of bytes'],
      [{ maxLineBytes: 1.5 }, 'source.maxLineBytes: must be a whole number of bytes'],
      [{ maxLineBytes: 2 ** 30 }, 'source.maxLineBytes: at most 536870912 (512 MiB; a longer line cannot be decoded as text)'],
      [{ maxRowBytes: -1 }, 'source.maxRowBytes: must be a positive number of bytes'],
      [{ maxRowBytes: 2 ** 33 }, 'source.maxRowBytes: at most 4294967296 (4 GiB)'],
      [{ maxRowBytes: '256MB' }, 'source.maxRowBytes: '],
    ];
    for (const [extra, message] of cases) {
      const e = errorOf(() => parseJob({ ...good, source: { uri: './data', ...extra } }));
      expect(e.message).toContain(message);
      expect(e.fields).toEqual([`source.${Object.keys(extra)[0]}`]);
    }
  });

  it('needs at least one tap', () => {
    const e = errorOf(() => parseJob({ ...good, taps: [] }));
    expect(e.message).toContain('taps: name at least one layer to tap');
  });
});

describe('column names and fingerprints', () => {
  it('derives SQL-friendly column names', () => {
    expect(defaultColumnName({ layer: 'linear_class.0', at: 'input' })).toBe('linear_class_0_input');
    expect(defaultColumnName({ layer: 'conv_16.2', at: 'output' })).toBe('conv_16_2');
    expect(defaultColumnName({ layer: 'block_1/conv', at: 'output' })).toBe('block_1_conv');
  });

  it('changes the fingerprint with model content, preprocessing and taps', () => {
    const tap = { layer: 'a', at: 'output' as const, as: 'a', reduce: 'none' as const, normalize: 'none' as const, dtype: 'float32' as const };
    const pre = { size: [2, 2] as [number, number], fit: 'cover' as const, layout: 'nhwc' as const, channels: 3 as const, mean: [0, 0, 0], std: [1, 1, 1] };
    const base = computeFingerprint('h1', pre, [tap]);
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(computeFingerprint('h1', pre, [tap])).toBe(base);
    expect(computeFingerprint('h2', pre, [tap])).not.toBe(base);
    expect(computeFingerprint('h1', { ...pre, fit: 'fill' }, [tap])).not.toBe(base);
    expect(computeFingerprint('h1', pre, [{ ...tap, reduce: 'mean' }])).not.toBe(base);
  });
});
