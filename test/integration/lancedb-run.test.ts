import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LanceTables } from '@layertap/lancedb-io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobConfigError, parseJob } from '../../src/config/index.js';
import { resolveJob, runsLocation } from '../../src/pipeline/index.js';
import { runJob } from '../../src/queue/index.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { REDIS_URL, ROOT, tempDir, testPrefix } from '../helpers/index.js';
import { startS3Server, testBucket } from '../helpers/s3.js';

const TEXT = fileURLToPath(new URL('../fixtures/text-model/', import.meta.url));
const WORDS = ['cat', 'dog', 'river', 'layer', 'token', 'cloud', 'stone', 'music', 'paper', 'light', 'train', 'green'];

/** Sentence `i`, `v` its edit: different words per row, so no two rows embed alike. */
function sentence(i: number, v = 0): string {
  const w = (k: number) => WORDS[(i * 7 + k * 3 + v * 5) % WORDS.length];
  return `${w(0)} ${w(1)} number ${i} and ${w(2)} ${v > 0 ? `edited ${v} ${w(3)}` : ''}`.trim();
}

async function writeSource(file: string, rows: Array<{ id: string; text: string }>): Promise<void> {
  await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** The rows of a run's part files: id -> tap -> vector. */
async function partVectors(files: string[], taps: string[]): Promise<Map<string, Record<string, number[]>>> {
  const out = new Map<string, Record<string, number[]>>();
  for (const f of files) {
    const t = await readPartFile(f);
    for (let i = 0; i < t.numRows; i++) {
      const row: Record<string, number[]> = {};
      for (const tap of taps) row[tap] = [...(t.getChild(tap)!.get(i) as Iterable<number>)];
      out.set(String(t.getChild('id')!.get(i)), row);
    }
  }
  return out;
}

describe('a job with sink.format lancedb', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const settings = { redisUrl: REDIS_URL, prefix };
  const taps = ['mean', 'pooler'];
  let db: LanceTables;

  beforeAll(async () => {
    tmp = await tempDir('layertap-lancedb-run-');
  });
  afterAll(async () => {
    db?.close();
    await cleanup();
    await tmp.remove();
  });

  const job = (sink: Record<string, unknown>, name = 'docs') =>
    parseJob({
      name,
      source: { uri: join(tmp.dir, 'docs.jsonl'), idColumn: 'id', inputColumn: 'text' },
      model: { uri: join(TEXT, 'model.onnx') },
      preprocess: { maxLength: 32 },
      taps: [
        { layer: 'encoder.layer.3', reduce: 'mean', as: 'mean' },
        { layer: 'pooler', as: 'pooler' },
      ],
      batchSize: 4,
      shardSize: 7,
      incremental: true,
      sink,
    });

  it('writes the rows into the table, then mirrors the source after changed, removed and added rows', async () => {
    const first = Array.from({ length: 30 }, (_, i) => ({ id: `d${String(i).padStart(3, '0')}`, text: sentence(i) }));
    await writeSource(join(tmp.dir, 'docs.jsonl'), first);
    const dbDir = join(tmp.dir, 'db');
    const r1 = await runJob(job({ uri: dbDir, format: 'lancedb' }), { settings, threads: 1 });
    expect(r1.status, r1.error ?? '').toBe('committed');
    expect(r1.rows).toBe(30);
    // run folders (parts, manifest, markers) beside the table, under <uri>/<table>.layertap
    expect(r1.output.uri).toBe(join(dbDir, 'docs.layertap', 'docs', r1.fingerprint, r1.runId));
    expect(runsLocation(job({ uri: dbDir, format: 'lancedb' }))).toBe(join(dbDir, 'docs.layertap'));
    expect(runsLocation(job({ uri: dbDir }))).toBe(dbDir);
    const m1 = JSON.parse(await readFile(r1.output.manifest!, 'utf8')) as { table: unknown };
    expect(m1.table).toEqual({ uri: dbDir, table: 'docs', rows: 30, version: 1, inserted: 30, updated: 0, deleted: 0, unchanged: 0, indexes: [] });

    db = await LanceTables.connect(dbDir);
    expect(await db.tableNames()).toEqual(['docs']);
    expect(await db.countRows('docs')).toBe(30);
    const v1 = await partVectors(r1.output.files, taps);
    // LanceDB's own search: every row finds itself first, in every tap column
    for (const [id, row] of v1) {
      for (const tap of taps) {
        const hits = await db.search('docs', tap, row[tap]!, 2, 'cosine');
        expect(hits[0]!.id, `${id} ${tap}`).toBe(id);
        expect(hits[0]!.distance).toBeLessThan(1e-5);
      }
    }

    // the README's block that reads the table back with LanceDB runs against it (from the package
    // that holds @lancedb/lancedb, as a program that installed it would)
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Into LanceDB'));
    const code = /```js\n([\s\S]*?)```/.exec(section)![1]!.replaceAll("connect('vectors')", `connect(${JSON.stringify(dbDir)})`);
    const script = join(ROOT, 'packages/lancedb-io', `.recipe-${process.pid}.mjs`);
    await writeFile(script, code);
    try {
      const printed = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [script], { timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
      );
      // the README shows what the example job's ten rows print; this table has 30
      expect(/\/\/ (\d+) true$/m.test(code)).toBe(true);
      expect(printed.trim()).toBe('30 true');
    } finally {
      await rm(script, { force: true });
    }

    // d000..d002 removed, d010..d013 edited, d100..d104 added
    const edited = new Set(['d010', 'd011', 'd012', 'd013']);
    const second = [
      ...first.slice(3).map((r, i) => (edited.has(r.id) ? { id: r.id, text: sentence(i + 3, 1) } : r)),
      ...Array.from({ length: 5 }, (_, i) => ({ id: `d${100 + i}`, text: sentence(100 + i) })),
    ];
    await writeSource(join(tmp.dir, 'docs.jsonl'), second);
    const r2 = await runJob(job({ uri: dbDir, format: 'lancedb' }), { settings, threads: 1 });
    expect(r2.status, r2.error ?? '').toBe('committed');
    const m2 = JSON.parse(await readFile(r2.output.manifest!, 'utf8')) as { table: Record<string, unknown>; incremental: Record<string, unknown> };
    expect(m2.incremental).toEqual({ baseRunId: r1.runId, carriedRows: 23, embeddedRows: 9 });
    // only the changed rows are written: the 23 the table holds as they are stay untouched
    expect(m2.table).toMatchObject({ table: 'docs', rows: 32, inserted: 5, updated: 4, deleted: 3, unchanged: 23 });
    expect(await db.countRows('docs')).toBe(32);
    expect((await db.ids('docs')).sort()).toEqual(second.map((r) => r.id).sort());
    const v2 = await partVectors(r2.output.files, taps);
    for (const [id, row] of v2) {
      const hits = await db.search('docs', 'mean', row.mean!, 1, 'cosine');
      expect(hits[0]!.id, id).toBe(id);
      expect(hits[0]!.distance).toBeLessThan(1e-5);
    }
    // an edited row holds its new vector, not the old one
    for (const id of edited) {
      const old = await db.search('docs', 'mean', v1.get(id)!.mean!, 40, 'cosine');
      expect(old.find((h) => h.id === id)!.distance).toBeGreaterThan(1e-4);
    }
  });

  it('names the table after sink.table, and keeps apart the tables of two jobs in one database', async () => {
    await writeSource(
      join(tmp.dir, 'docs.jsonl'),
      Array.from({ length: 4 }, (_, i) => ({ id: `x${i}`, text: sentence(i) })),
    );
    const dbDir = join(tmp.dir, 'db2');
    const a = await runJob(job({ uri: dbDir, format: 'lancedb', table: 'chunks_v1' }), { settings, threads: 1 });
    expect(a.status, a.error ?? '').toBe('committed');
    expect(a.output.uri.startsWith(join(dbDir, 'chunks_v1.layertap') + '/')).toBe(true);
    const other = await LanceTables.connect(dbDir);
    try {
      expect(await other.tableNames()).toEqual(['chunks_v1']);
      expect(await other.countRows('chunks_v1')).toBe(4);
    } finally {
      other.close();
    }
  });

  it('writes a table in an S3-compatible store, its run folders beside it', async () => {
    const bucket = testBucket();
    const s3 = await startS3Server([bucket]);
    try {
      const rows = Array.from({ length: 12 }, (_, i) => ({ id: `s${i}`, text: sentence(i + 40) }));
      await writeSource(join(tmp.dir, 'docs.jsonl'), rows);
      const sink = { uri: `s3://${bucket}/db`, format: 'lancedb', table: 'remote', endpoint: s3.endpoint };
      const r1 = await runJob(job(sink), { settings, threads: 1 });
      expect(r1.status, r1.error ?? '').toBe('committed');
      expect(r1.output.uri).toBe(`s3://${bucket}/db/remote.layertap/docs/${r1.fingerprint}/${r1.runId}`);
      expect((await s3.keys(bucket, 'db/remote.layertap/')).some((k) => k.endsWith('/_SUCCESS'))).toBe(true);
      expect((await s3.keys(bucket, 'db/remote.lance/')).length).toBeGreaterThan(0);
      await writeSource(join(tmp.dir, 'docs.jsonl'), [...rows.slice(2), { id: 's99', text: sentence(99) }]);
      const r2 = await runJob(job(sink), { settings, threads: 1 });
      expect(r2.status, r2.error ?? '').toBe('committed');
      const m2 = JSON.parse(Buffer.from(await s3.get(bucket, `db/remote.layertap/docs/${r2.fingerprint}/${r2.runId}/_manifest.json`)).toString('utf8'));
      expect(m2.table).toMatchObject({ uri: `s3://${bucket}/db`, table: 'remote', rows: 11, inserted: 1, updated: 0, deleted: 2, unchanged: 10 });
      const remote = await LanceTables.connect(`s3://${bucket}/db`, {
        aws_endpoint: s3.endpoint,
        allow_http: 'true',
        aws_region: 'us-east-1',
        aws_virtual_hosted_style_request: 'false',
      });
      try {
        expect(await remote.countRows('remote')).toBe(11);
        expect((await remote.ids('remote')).sort()).toEqual([...rows.slice(2).map((r) => r.id), 's99'].sort());
      } finally {
        remote.close();
      }
    } finally {
      await s3.close();
    }
  });

  it('fails a run whose ids repeat, leaving the table as it was', async () => {
    const dbDir = join(tmp.dir, 'db-dup');
    await writeSource(
      join(tmp.dir, 'docs.jsonl'),
      Array.from({ length: 6 }, (_, i) => ({ id: `u${i}`, text: sentence(i + 60) })),
    );
    const ok = await runJob(job({ uri: dbDir, format: 'lancedb' }), { settings, threads: 1 });
    expect(ok.status, ok.error ?? '').toBe('committed');
    await writeSource(
      join(tmp.dir, 'docs.jsonl'),
      ['u0', 'u1', 'u1', 'u2', 'u2', 'u3'].map((id, i) => ({ id, text: sentence(i + 70) })),
    );
    const dup = await runJob(job({ uri: dbDir, format: 'lancedb' }), { settings, threads: 1 });
    expect(dup.status).toBe('failed');
    expect(dup.error).toBe(
      "sink.format lancedb: 2 row(s) have the id of an earlier row ('u1', 'u2'); a table keyed by id needs unique ids, so the table was not changed",
    );
    const t = await LanceTables.connect(dbDir);
    try {
      expect((await t.ids('docs')).sort()).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5']);
    } finally {
      t.close();
    }
  });

  it('refuses table fields on a file format and a bad index or table, naming the field', async () => {
    const onArrow = await resolveJob(job({ uri: join(tmp.dir, 'out'), table: 't' })).catch((e: unknown) => e);
    expect(onArrow).toBeInstanceOf(JobConfigError);
    expect((onArrow as JobConfigError).message).toBe('sink.table: only applies to format lancedb, not arrow');
    expect((onArrow as JobConfigError).fields).toEqual(['sink.table']);

    expect(() => job({ uri: 'x', format: 'lancedb', index: { type: 'ivf' } })).toThrow(JobConfigError);
    const idx = (() => {
      try {
        job({ uri: 'x', format: 'lancedb', index: { type: 'ivf' } });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(idx).toBe('invalid job file job:\n  - sink.index.type: invalid value; choose one of "ivf_pq", "hnsw_sq"');
    const table = (() => {
      try {
        job({ uri: 'x', format: 'lancedb', table: '../up' });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(table).toBe("invalid job file job:\n  - sink.table: must be letters, digits, '_', '-' or '.' (not starting with '.')");
  });
});
