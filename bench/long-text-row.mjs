#!/usr/bin/env node
// Cost of one long text row: a JSONL whose one row holds MB of words (27 MB by default), embedded
// with the text fixture at maxLength 32 by `layertap run` under `/usr/bin/time -v`. A row's cost
// should follow maxLength, not the row's size: time and peak RSS stay flat as the row grows.
//
//   npm run build && node bench/long-text-row.mjs 27 1
//
// Arguments: the row's size in MB (several give several runs). Needs Linux (/usr/bin/time) and
// Redis at REDIS_URL (default redis://127.0.0.1:6379).
import { spawnSync } from 'node:child_process';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT } from './lib/common.js';

const TEXT = join(ROOT, 'test', 'fixtures', 'text-model');
const WORDS = 'the cat sat on the mat a dog ran to park in morning hooks keep output of middle layer for every token'.split(' ');
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
if (sizes.length === 0) sizes.push(27);

/** A JSONL of one row of about `mb` MB of words, written in chunks. */
async function writeRow(file, mb) {
  const f = await open(file, 'w');
  await f.write('{"id": "long", "text": "');
  let seed = 1;
  const target = mb * 1024 * 1024;
  for (let written = 0; written < target;) {
    const words = [];
    for (let i = 0; i < 100_000; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      words.push(WORDS[seed % WORDS.length]);
    }
    const chunk = words.join(' ') + ' ';
    await f.write(chunk);
    written += chunk.length;
  }
  await f.write('end"}\n');
  await f.close();
}

const dir = await mkdtemp(join(tmpdir(), 'layertap-bench-long-text-'));
try {
  for (const mb of sizes) {
    const data = join(dir, `row-${mb}.jsonl`);
    await writeRow(data, mb);
    const job = join(dir, `job-${mb}.json`);
    await writeFile(
      job,
      JSON.stringify({
        name: `long-text-${String(mb).replace('.', '_')}`,
        source: { uri: data, idColumn: 'id', inputColumn: 'text' },
        model: { uri: join(TEXT, 'model.onnx') },
        preprocess: { maxLength: 32 },
        taps: [{ layer: 'encoder.layer.3', reduce: 'mean', as: 'emb' }],
        sink: { uri: join(dir, `out-${mb}`) },
      }),
    );
    const env = { ...process.env, LAYERTAP_PREFIX: `bench-long-text-${process.pid}-${mb}` };
    const r = spawnSync('/usr/bin/time', ['-v', process.execPath, CLI, 'run', job, '--threads', '1', '--json'], { env, encoding: 'utf8' });
    const field = (name) => new RegExp(`${name}: (.+)`).exec(r.stderr)?.[1]?.trim();
    const summary = r.status === 0 ? JSON.parse(r.stdout) : null;
    console.log(
      `${mb} MB row: exit ${r.status}, ${summary?.status ?? '-'}, ${summary?.rows ?? '-'} rows; ` +
        `wall ${field('Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)')}, ` +
        `peak RSS ${(Number(field('Maximum resident set size \\(kbytes\\)')) / 1024).toFixed(0)} MB`,
    );
    if (r.status !== 0) console.log(r.stderr.slice(-2000));
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
