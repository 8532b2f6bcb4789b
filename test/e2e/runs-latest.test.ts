import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestFile } from '../../src/sinks/manifest.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';

const TEXT_MODEL = fileURLToPath(new URL('../fixtures/text-model/model.onnx', import.meta.url));

describe("a dataset's latest run: _LATEST, runs --latest, movable run folders", () => {
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

  async function jobFile(name: string, rows: number): Promise<string> {
    const data = join(tmp.dir, `${name}.jsonl`);
    await writeFile(data, Array.from({ length: rows }, (_, i) => JSON.stringify({ id: `r${i}`, text: `row ${i} of ${name}` })).join('\n') + '\n');
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

  it('points _LATEST at the newest committed run, lists it with runs --latest, and names files relative to the run folder', async () => {
    const a1 = JSON.parse((await runCli(['run', await jobFile('alpha', 5), '--json'], env)).stdout) as {
      runId: string;
      fingerprint: string;
      output: { uri: string };
    };
    expect(await readFile(join(tmp.dir, 'out', 'alpha', '_LATEST'), 'utf8')).toBe(`${a1.fingerprint}/${a1.runId}\n`);
    const b1 = JSON.parse((await runCli(['run', await jobFile('beta', 4), '--json'], env)).stdout) as { runId: string };
    const a2 = JSON.parse((await runCli(['run', await jobFile('alpha', 7), '--json'], env)).stdout) as {
      runId: string;
      fingerprint: string;
      output: { uri: string };
    };
    expect(await readFile(join(tmp.dir, 'out', 'alpha', '_LATEST'), 'utf8')).toBe(`${a2.fingerprint}/${a2.runId}\n`);

    const latest = await runCli(['runs', '--latest', '--json'], env);
    expect(latest.code, latest.stderr).toBe(0);
    const runs = (JSON.parse(latest.stdout) as { runs: Array<{ runId: string; name: string; rows: number }> }).runs;
    expect(runs.map((r) => [r.name, r.runId, r.rows])).toEqual([
      ['alpha', a2.runId, 7],
      ['beta', b1.runId, 4],
    ]);
    const one = JSON.parse((await runCli(['runs', '--latest', '--name', 'alpha', '--json'], env)).stdout) as { runs: Array<{ runId: string }> };
    expect(one.runs.map((r) => r.runId)).toEqual([a2.runId]);
    const text = await runCli(['runs', '--latest'], env);
    expect(text.stdout).toContain(a2.runId);
    expect(text.stdout).not.toContain(a1.runId);

    // the manifest names its files relative to the run folder: the folder reads the same once moved
    const m = JSON.parse(await readFile(join(a2.output.uri, '_manifest.json'), 'utf8')) as { files: string[]; shards: Array<{ file: string }> };
    expect(m.files).toEqual(['part-00000.arrow', 'part-00001.arrow', 'part-00002.arrow']);
    expect(m.shards.map((s) => s.file)).toEqual(m.files);
    const moved = join(tmp.dir, 'moved');
    await cp(a2.output.uri, moved, { recursive: true });
    await rm(a2.output.uri, { recursive: true });
    let rows = 0;
    for (const f of m.files) rows += (await readPartFile(manifestFile(moved, f))).numRows;
    expect(rows).toBe(7);
    // manifests written before kept full paths: those are read as they are
    expect(manifestFile(moved, '/data/out/alpha/f/r/part-00000.arrow')).toBe('/data/out/alpha/f/r/part-00000.arrow');
    expect(manifestFile('s3://b/out/alpha/f/r', 'part-00001.parquet')).toBe('s3://b/out/alpha/f/r/part-00001.parquet');
    expect(manifestFile('s3://b/out/alpha/f/r', 's3://b/old/part-00001.parquet')).toBe('s3://b/old/part-00001.parquet');
  }, 120_000);
});
