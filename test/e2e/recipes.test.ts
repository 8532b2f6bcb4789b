import { execFile } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJobFile } from '../../src/config/index.js';
import { runJob } from '../../src/queue/index.js';
import { REDIS_URL, ROOT, tempDir, testPrefix } from '../helpers/index.js';

/** The fenced blocks of `lang` in a markdown file, with the heading of the section each is in. */
function blocks(markdown: string, lang: string): Array<{ section: string; code: string; line: number }> {
  const out: Array<{ section: string; code: string; line: number }> = [];
  const lines = markdown.split('\n');
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^#{1,3} /.test(l)) section = l.replace(/^#+ /, '');
    if (l.trim() === '```' + lang) {
      const start = i + 1;
      let end = start;
      while (end < lines.length && lines[end]!.trim() !== '```') end++;
      out.push({ section, code: lines.slice(start, end).join('\n'), line: start });
      i = end;
    }
  }
  return out;
}

/** Runs a Node script to its end. */
function runNode(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** SQL statements of a block, comments dropped. */
function statements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((l) => !l.trim().startsWith('--'))
    .join('\n')
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

// Every reading recipe of the README and docs/ is run here against a real run of the demo job
// (Parquet parts), with paths under out/ read in this test's folder and <run> taken from _LATEST.
describe('the reading recipes of the README and docs', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  let run = '';
  let db: DuckDBInstance;
  let con: DuckDBConnection;
  const docs: Array<{ file: string; text: string }> = [];

  beforeAll(async () => {
    tmp = await tempDir('layertap-recipes-');
    const job = await loadJobFile(join(ROOT, 'config/examples/demo.yaml'));
    const summary = await runJob(
      { ...job, sink: { ...job.sink, uri: join(tmp.dir, 'out'), format: 'parquet' } },
      { settings: { redisUrl: REDIS_URL, prefix }, threads: 1 },
    );
    expect(summary.status, summary.error ?? '').toBe('committed');
    run = (await readFile(join(tmp.dir, 'out', 'demo', '_LATEST'), 'utf8')).trim();
    expect(run).toBe(`${summary.fingerprint}/${summary.runId}`);
    db = await DuckDBInstance.create(':memory:');
    con = await db.connect();
    docs.push({ file: 'README.md', text: await readFile(join(ROOT, 'README.md'), 'utf8') });
    for (const f of (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).sort()) {
      docs.push({ file: `docs/${f}`, text: await readFile(join(ROOT, 'docs', f), 'utf8') });
    }
  }, 180_000);
  afterAll(async () => {
    con?.closeSync();
    await cleanup();
    await tmp.remove();
  });

  const here = (code: string) => code.replaceAll("'out/", `'${tmp.dir}/out/`).replaceAll('"out/', `"${tmp.dir}/out/`).replaceAll('<run>', run);

  it('runs every sql block in DuckDB: counts, nearest neighbours and metadata of the run', async () => {
    const sql = docs.flatMap((d) => blocks(d.text, 'sql').map((b) => ({ ...b, file: d.file })));
    expect(sql.length).toBeGreaterThanOrEqual(3);
    let neighbourQueries = 0;
    for (const b of sql) {
      for (const stmt of statements(b.code)) {
        const where = `${b.file}:${b.line} (${b.section})`;
        const rows = (
          await con.runAndReadAll(here(stmt)).catch((e: unknown) => {
            throw new Error(`${where}: ${(e as Error).message}\n${stmt}`);
          })
        ).getRowObjectsJS() as Array<Record<string, unknown>>;
        expect(rows.length, where).toBeGreaterThan(0);
        if (/^SELECT count\(\*\)/i.test(stmt)) expect(Number(Object.values(rows[0]!)[0]), where).toBe(48);
        const query = /id = '([^']+)'/.exec(stmt)?.[1];
        if (query !== undefined && /ORDER BY \w+ DESC LIMIT 5/i.test(stmt)) {
          neighbourQueries++;
          // the item itself first (cosine 1), then the nearest others: edits of the same scene
          expect(rows).toHaveLength(5);
          expect(rows[0]!.id, where).toBe(query);
          expect(Object.values(rows[0]!)[1] as number).toBeCloseTo(1, 5);
          const scene = query.split('/')[0];
          expect(rows.slice(1).filter((r) => String(r.id).startsWith(`${scene}/`)).length, where).toBeGreaterThanOrEqual(3);
        }
        if (/parquet_kv_metadata/.test(stmt)) expect(rows.map((r) => r.key)).toContain('layertap.fingerprint');
      }
    }
    expect(neighbourQueries).toBeGreaterThanOrEqual(3);
  });

  it('runs the js blocks of "Reading a run" (nodejs-polars)', async () => {
    const readme = docs.find((d) => d.file === 'README.md')!.text;
    const js = blocks(readme, 'js').filter((b) => b.section.startsWith('Reading a run'));
    expect(js.length).toBeGreaterThanOrEqual(1);
    for (const b of js) {
      const file = join(ROOT, `.recipe-${process.pid}-${b.line}.mjs`);
      await writeFile(file, here(b.code));
      try {
        const r = await runNode(file);
        expect(r.code, r.stderr).toBe(0);
        // what the block's comment says it prints
        const said = /\/\/ (.+)$/m.exec(b.code)?.[1];
        if (said) expect(r.stdout.trim().replace(/\s+/g, ' ')).toBe(said.replace(/\s+/g, ' '));
      } finally {
        await rm(file, { force: true });
      }
    }
  });

  it('names the Arrow extension DuckDB lacks offline instead of a read_arrow that cannot run', () => {
    for (const d of docs) {
      for (const b of blocks(d.text, 'sql')) expect(b.code, `${d.file}:${b.line}`).not.toMatch(/read_arrow/);
    }
  });
});
