import { cp, mkdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanceTables } from '@layertap/lancedb-io';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { runCli } from '../helpers/cli.js';
import { HubStandIn, sentenceTransformersFiles } from '../helpers/hub-standin.js';
import { REDIS_URL, ROOT, tempDir, testPrefix } from '../helpers/index.js';

// The job files under config/examples run as they are, from any folder: their relative paths are
// read against the job file's folder. A copy of the project's layout (config/examples copied,
// data/ and test/ linked) keeps the output in a temp folder; `run` ends with its summary, not
// with an error about a column the report looked for.
describe('config/examples', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();

  beforeAll(async () => {
    tmp = await tempDir('layertap-examples-');
    await mkdir(join(tmp.dir, 'config'));
    await cp(join(ROOT, 'config/examples'), join(tmp.dir, 'config/examples'), { recursive: true });
    await symlink(join(ROOT, 'data'), join(tmp.dir, 'data'));
    await symlink(join(ROOT, 'test'), join(tmp.dir, 'test'));
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('demo.yaml, run from its own folder (cd config/examples && layertap run demo.yaml): 48 rows into ../../out', async () => {
    const r = await runCli(['run', 'demo.yaml', '--threads', '1'], { REDIS_URL, LAYERTAP_PREFIX: prefix }, 90_000, join(tmp.dir, 'config/examples'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('rows        48 embedded, 0 error rows, of 48');
    expect(r.stdout).toMatch(new RegExp(`^  output      ${join(tmp.dir, 'out', 'demo')}/[0-9a-f]{16}/\\S+$`, 'm'));
  }, 100_000);

  it('hub.yaml: its Hub id served by a stand-in Hub (HF_ENDPOINT), no taps: one embedding column', async () => {
    const hub = await HubStandIn.start({ 'sentence-transformers/all-MiniLM-L6-v2': { refs: { main: sentenceTransformersFiles('mean_tokens', true) } } });
    try {
      const env = { REDIS_URL, LAYERTAP_PREFIX: prefix, HF_ENDPOINT: hub.url, HF_HOME: join(tmp.dir, 'hf'), HF_HUB_OFFLINE: undefined, HF_TOKEN: undefined };
      const r = await runCli(['run', join(tmp.dir, 'config/examples/hub.yaml'), '--threads', '1', '--json'], env, 60_000, tmp.dir);
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as { status: string; rows: number; output: { uri: string } };
      expect([s.status, s.rows]).toEqual(['committed', 10]);
      expect(s.output.uri.startsWith(join(tmp.dir, 'out', 'minilm'))).toBe(true);
    } finally {
      await hub.close();
    }
  }, 70_000);

  it('text.yaml, named from another folder: glob taps, a ragged token column; exit 0 with the summary', async () => {
    const r = await runCli(['run', join(tmp.dir, 'config/examples/text.yaml'), '--threads', '1'], { REDIS_URL, LAYERTAP_PREFIX: prefix }, 60_000, '/');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^run \S+: committed$/m);
    expect(r.stdout).toContain('rows        10 embedded, 0 error rows, of 10');
    expect(r.stdout).toMatch(new RegExp(`^  output      ${join(tmp.dir, 'out', 'text-demo')}/`, 'm'));
    expect(r.stderr).not.toMatch(/^layertap: /m);
  }, 70_000);

  it('long-documents.yaml: a row per chunk with its text, chunk, start and end; documents and chunks in the manifest', async () => {
    const r = await runCli(
      ['run', join(tmp.dir, 'config/examples/long-documents.yaml'), '--threads', '1', '--json'],
      { REDIS_URL, LAYERTAP_PREFIX: prefix },
      60_000,
      tmp.dir,
    );
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { status: string; rows: number; documents: number; output: { manifest: string; files: string[] } };
    expect(s.status).toBe('committed');
    expect(s.documents).toBe(10);
    const manifest = JSON.parse(await readFile(s.output.manifest, 'utf8')) as { documents: number; chunks: number; rows: number; truncatedRows: number };
    expect(manifest).toMatchObject({ documents: 10, rows: s.rows, chunks: s.rows, truncatedRows: 0 });
    expect(s.rows).toBeGreaterThan(10);
    const table = await readPartFile(s.output.files[0]!);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['id', 'text', 'chunk', 'start', 'end', 'embedding']);
    expect(table.getChild('id')!.get(0)).toBe('s000');
    expect(table.getChild('chunk')!.get(0)).toBe(0);
  }, 70_000);

  it('lancedb.yaml: the sentences into table docs of ../../vectors, the run folder beside it', async () => {
    const r = await runCli(
      ['run', join(tmp.dir, 'config/examples/lancedb.yaml'), '--threads', '1', '--json'],
      { REDIS_URL, LAYERTAP_PREFIX: prefix },
      60_000,
      '/',
    );
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { status: string; rows: number; output: { uri: string }; table: unknown };
    expect(s.status).toBe('committed');
    expect(s.rows).toBe(10);
    const dbDir = join(tmp.dir, 'vectors');
    expect(s.table).toEqual({ uri: dbDir, table: 'docs', rows: 10, version: 1, inserted: 10, updated: 0, deleted: 0, unchanged: 0, indexes: [] });
    // run again: no row changed, none is written; the summary says so in a line of its own
    const again = await runCli(['run', join(tmp.dir, 'config/examples/lancedb.yaml'), '--threads', '1'], { REDIS_URL, LAYERTAP_PREFIX: prefix }, 60_000, '/');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`  table       docs in ${dbDir}: 10 rows (0 inserted, 0 updated, 0 deleted, 10 unchanged), version 1\n`);
    expect(s.output.uri.startsWith(join(tmp.dir, 'vectors', 'docs.layertap', 'docs') + '/')).toBe(true);
    const db = await LanceTables.connect(dbDir);
    try {
      expect(await db.countRows('docs')).toBe(10);
      expect((await db.describe('docs'))!.fields.map((f) => `${f.name} ${f.type}`)).toEqual([
        'id Utf8',
        // source.carry's default for text: the sentence beside its id
        'text Utf8',
        'mean FixedSizeList[32]<Float32>',
        'pooler FixedSizeList[32]<Float32>',
      ]);
    } finally {
      db.close();
    }
  }, 70_000);
});
