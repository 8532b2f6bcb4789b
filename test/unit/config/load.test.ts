import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJobFile } from '../../../src/config/index.js';
import { tempDir } from '../../helpers/index.js';

describe('loadJobFile: relative paths', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('layertap-load-');
    await mkdir(join(tmp.dir, 'jobs', 'nightly'), { recursive: true });
  });
  afterAll(async () => {
    await tmp.remove();
  });

  it("reads every relative path of a job file against the file's folder, whatever the working folder", async () => {
    const file = join(tmp.dir, 'jobs', 'nightly', 'text.yaml');
    await writeFile(
      file,
      [
        'name: t',
        'source: { uri: ../data/docs.jsonl }',
        'model: { uri: ./models/m.onnx, tokenizer: tok/tokenizer.json }',
        'taps: [{ layer: pooler }]',
        'sink: { uri: ../../out }',
      ].join('\n'),
    );
    const job = await loadJobFile(file);
    expect(job.source.uri).toBe(join(tmp.dir, 'jobs', 'data', 'docs.jsonl'));
    expect(job.model.uri).toBe(join(tmp.dir, 'jobs', 'nightly', 'models', 'm.onnx'));
    expect(job.model.tokenizer).toBe(join(tmp.dir, 'jobs', 'nightly', 'tok', 'tokenizer.json'));
    expect(job.sink.uri).toBe(join(tmp.dir, 'out'));
    // the same file named by a relative path from another folder means the same job
    const cwd = process.cwd();
    try {
      process.chdir(join(tmp.dir, 'jobs'));
      expect(await loadJobFile('nightly/text.yaml')).toEqual(job);
    } finally {
      process.chdir(cwd);
    }
  });

  it('leaves URIs with a scheme and absolute paths as they are, and an unset tokenizer unset', async () => {
    const file = join(tmp.dir, 'jobs', 'remote.json');
    await writeFile(
      file,
      JSON.stringify({
        name: 'r',
        source: { uri: 's3://bucket/images' },
        model: { uri: 'hf:org/model@v1' },
        taps: [{ layer: 'pooler' }],
        sink: { uri: '/srv/out' },
      }),
    );
    const job = await loadJobFile(file);
    expect([job.source.uri, job.model.uri, job.sink.uri]).toEqual(['s3://bucket/images', 'hf:org/model@v1', '/srv/out']);
    expect(job.model).not.toHaveProperty('tokenizer');
  });
});
