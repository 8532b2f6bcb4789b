import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';

const TEXT_MODEL = fileURLToPath(new URL('../fixtures/text-model/model.onnx', import.meta.url));

describe('layertap run warns about duplicate ids', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };

  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  /** A job over JSONL rows with these ids, in shards of 3. */
  async function jobFile(name: string, ids: string[]): Promise<string> {
    const data = join(tmp.dir, `${name}.jsonl`);
    await writeFile(data, ids.map((id, i) => JSON.stringify({ id, text: `row ${i}` })).join('\n') + '\n');
    const file = join(tmp.dir, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        name,
        source: { uri: data, inputColumn: 'text' },
        model: { uri: TEXT_MODEL },
        taps: [{ layer: 'pooler' }],
        shardSize: 3,
        sink: { uri: join(tmp.dir, 'out') },
      }),
    );
    return file;
  }

  it('one line on stderr with the count across shards and the first ids that repeat; none without duplicates', async () => {
    const r = await runCli(['run', await jobFile('dups', ['a', 'b', 'a', 'c', 'a', 'd', 'b', 'e']), '--json', '--threads', '1'], env);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { rows: number; output: { manifest: string } };
    expect(summary.rows).toBe(8);
    expect(r.stderr.split('\n').filter((l) => l.includes('duplicate'))).toEqual([
      'warning: duplicate ids: 3 row(s) carry an id that an earlier row already has, e.g. "a", "b"',
    ]);
    expect(JSON.parse(await readFile(summary.output.manifest, 'utf8')).duplicateIds).toEqual({ count: 3, examples: ['a', 'b'] });

    const unique = await runCli(['run', await jobFile('unique', ['a', 'b', 'c', 'd']), '--threads', '1'], env);
    expect(unique.code, unique.stderr).toBe(0);
    expect(unique.stderr).not.toContain('duplicate');
  }, 120_000);
});
