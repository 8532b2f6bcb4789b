import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, SEED_MODEL, tempDir, testPrefix } from '../helpers/index.js';
import { arrowMutants, FUZZ_ROWS, jsonlWithLongLine, parquetMutants, validArrowFile, validArrowStream, validParquet } from '../helpers/table-fuzz.js';

// A handful of damaged tables through `layertap run` with its embedded worker: every run ends
// within seconds with exit 0-3; a failure (1, 2) says why on one line and no stack trace; a run
// that commits (0) or ends partial (3) accounts for every planned row.

const BOUND_MS = 20_000;
const MiB = 1024 * 1024;

interface Case {
  name: string;
  ext: string;
  bytes: () => Promise<Uint8Array>;
  /** the exit code this damage leads to */
  code: 0 | 1 | 2 | 3;
  /** for 1 and 2: text the one-line reason holds */
  says?: RegExp;
  source?: Record<string, unknown>;
}

function mutant(all: Array<{ name: string; bytes: Uint8Array }>, name: string): Uint8Array {
  const m = all.find((x) => x.name === name);
  if (!m) throw new Error(`no mutant '${name}'`);
  return m.bytes;
}

const CASES: Case[] = [
  {
    name: 'Arrow file, batch 0 row count = 2^31',
    ext: 'arrow',
    bytes: async () => mutant(arrowMutants(validArrowFile()), 'batch 0 row count = 2147483648'),
    code: 2,
    says: /^layertap: source\.uri: .*\.arrow: record batch 0 says it has 2147483648 rows/,
  },
  {
    name: 'Arrow stream, batch 2 bodyLength = 2^31',
    ext: 'arrows',
    bytes: async () => mutant(arrowMutants(validArrowStream()), 'batch 2 bodyLength = 2147483648'),
    code: 2,
    says: /^layertap: source\.uri: .*\.arrows: the message at byte \d+ says its body is 2147483648 bytes/,
  },
  {
    name: 'Arrow file truncated to half',
    ext: 'arrow',
    bytes: async () => validArrowFile().subarray(0, Math.floor(validArrowFile().length / 2)),
    code: 2,
    says: /^layertap: source\.uri: .*\.arrow: .*(truncated|footer)/,
  },
  {
    name: 'Parquet, row group 1 num_rows = 2^40',
    ext: 'parquet',
    bytes: async () => mutant(parquetMutants(await validParquet()), 'row group 1 num_rows = 1099511627776'),
    code: 2,
    says: /^layertap: source\.uri: .*\.parquet: row group 1 says it has 1099511627776 rows/,
  },
  {
    // a byte of row group 2's pixel data: found only when that row group is read, so the two
    // shards that need it fail (once: damage is not retried) and the run ends partial
    name: 'Parquet, a byte of row group 2 data flipped',
    ext: 'parquet',
    bytes: async () => mutant(parquetMutants(await validParquet()), 'byte 16208 flipped'),
    code: 3,
  },
  {
    name: 'JSONL, a 40 MB line over source.maxLineBytes',
    ext: 'jsonl',
    bytes: async () => jsonlWithLongLine(5, 40 * MiB),
    code: 0,
    source: { maxLineBytes: 16 * MiB },
  },
];

describe('damaged tables through layertap run', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const env = { REDIS_URL, LAYERTAP_PREFIX: prefix };

  beforeAll(async () => {
    tmp = await tempDir('layertap-fuzz-cli-');
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it.each(CASES.map((c) => [c.name, c] as const))(
    '%s',
    async (_name, c) => {
      const slug = c.name.replace(/[^A-Za-z0-9]+/g, '-');
      const table = join(tmp.dir, `${slug}.${c.ext}`);
      await writeFile(table, await c.bytes());
      const job = join(tmp.dir, `${slug}.json`);
      await writeFile(
        job,
        JSON.stringify({
          name: slug,
          source: { uri: table, idColumn: 'id', inputColumn: 'pixels', ...c.source },
          model: { uri: SEED_MODEL },
          taps: [{ layer: 'linear_1.1' }],
          batchSize: 8,
          shardSize: 10,
          onShardFailure: 'partial',
          sink: { uri: join(tmp.dir, 'out') },
        }),
      );
      // runCli fails the test when the run has not ended within the bound
      const r = await runCli(['run', job, '--json', '--threads', '1', '--workers', '1'], env, BOUND_MS);
      expect(r.stderr, 'no stack trace').not.toMatch(/^\s+at /m);
      expect([0, 1, 2, 3]).toContain(r.code);
      expect(r.code, r.stderr).toBe(c.code);
      const out = JSON.parse(r.stdout) as Record<string, unknown>;
      if (r.code === 1 || r.code === 2) {
        const reason = r.stderr.trimEnd().split('\n').at(-1)!;
        expect(reason).toMatch(/^layertap: /);
        if (c.says) expect(reason).toMatch(c.says);
        expect(String(out.error)).not.toContain('\n');
        return;
      }
      const summary = out as { rows: number; errorRows: number; totalRows: number; output: { manifest: string } };
      expect(summary.totalRows).toBe(FUZZ_ROWS);
      const manifest = JSON.parse(await readFile(summary.output.manifest, 'utf8')) as { failedShards: Array<{ rows: number; error: string }> };
      const lost = manifest.failedShards.reduce((a, f) => a + f.rows, 0);
      // committed rows + error rows (+ rows of shards that failed, for a partial run) = planned rows
      expect(summary.rows + summary.errorRows + lost).toBe(summary.totalRows);
      if (r.code === 3) {
        expect(lost).toBeGreaterThan(0);
        for (const f of manifest.failedShards) expect(f.error).not.toContain('\n');
      }
    },
    BOUND_MS + 10_000,
  );
});
