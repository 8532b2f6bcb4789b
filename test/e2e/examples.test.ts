import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, ROOT, tempDir, testPrefix } from '../helpers/index.js';

// The job files under config/examples run as they are (only the output goes to a temp folder),
// and `run` ends with its summary, not with an error about a column the report looked for.
describe('config/examples', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();

  beforeAll(async () => {
    tmp = await tempDir('layertap-examples-');
  });
  afterAll(async () => {
    await cleanup();
    await tmp.remove();
  });

  it('text.yaml: glob taps, a ragged token column; exit 0 with the summary', async () => {
    const job = parse(await readFile(join(ROOT, 'config/examples/text.yaml'), 'utf8')) as { sink: { uri: string } };
    job.sink.uri = join(tmp.dir, 'out');
    const file = join(tmp.dir, 'text.yaml');
    await writeFile(file, stringify(job));
    const r = await runCli(['run', file, '--threads', '1'], { REDIS_URL, LAYERTAP_PREFIX: prefix }, 60_000, ROOT);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^run \S+: committed$/m);
    expect(r.stdout).toContain('rows        10 embedded, 0 error rows, of 10');
    expect(r.stderr).not.toMatch(/^layertap: /m);
  }, 70_000);
});
