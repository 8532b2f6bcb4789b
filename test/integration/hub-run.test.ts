import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobConfigError, parseJob, type JobInput } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { runJob } from '../../src/queue/index.js';
import { readPartFile } from '../../src/sinks/read-arrow.js';
import { HubStandIn, sentenceTransformersFiles, textModelFiles } from '../helpers/hub-standin.js';
import { maxAbsDiff, REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';
import { readNpy, TEXT_DIR } from '../helpers/models.js';

const REPO = 'layertap-test/tiny-st';
const EXPECTED = join(TEXT_DIR, 'expected');
const HIDDEN = 32;

/** The fixture's PyTorch outputs: the last layer's states of each row's real tokens, one row after another, and the row lengths. */
const TOKENS = readNpy(join(EXPECTED, 'encoder.layer.3__tokens.npy')).data;
const LENGTHS = (JSON.parse(readFileSync(join(EXPECTED, 'tokens.json'), 'utf8')) as { lengths: number[] }).lengths;

/**
 * What SentenceTransformer.encode returns for the fixture's sentences: the Pooling module's
 * `mode` over the last hidden state's real tokens (sentence-transformers' Pooling.forward), then
 * the Normalize module's L2 normalisation when there is one.
 */
function sentenceTransformersReference(mode: string, normalize: boolean): Float64Array[] {
  let at = 0;
  return LENGTHS.map((n) => {
    const token = (t: number, i: number) => TOKENS[(at + t) * HIDDEN + i]!;
    const out = new Float64Array(HIDDEN);
    for (let i = 0; i < HIDDEN; i++) {
      let sum = 0;
      let max = -Infinity;
      for (let t = 0; t < n; t++) {
        sum += token(t, i);
        max = Math.max(max, token(t, i));
      }
      out[i] =
        mode === 'mean_tokens'
          ? sum / n
          : mode === 'mean_sqrt_len_tokens'
            ? sum / Math.sqrt(n)
            : mode === 'max_tokens'
              ? max
              : mode === 'cls_token'
                ? token(0, i)
                : token(n - 1, i); // lasttoken: the last real token
    }
    at += n;
    if (!normalize) return out;
    const norm = Math.sqrt(out.reduce((a, v) => a + v * v, 0));
    return out.map((v) => v / norm);
  });
}

describe('a sentence-transformers model by its Hub id, end to end', () => {
  let hub: HubStandIn;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  const saved = {
    HF_HOME: process.env.HF_HOME,
    HF_ENDPOINT: process.env.HF_ENDPOINT,
    HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE,
    HF_TOKEN: process.env.HF_TOKEN,
  };
  const modes: Array<[branch: string, mode: string, normalize: boolean]> = [
    ['main', 'mean_tokens', true],
    ['cls', 'cls_token', false],
    ['max', 'max_tokens', true],
    ['lasttoken', 'lasttoken', true],
    ['mean-sqrt-len', 'mean_sqrt_len_tokens', false],
  ];

  const job = (uri: string, extra: Partial<JobInput> = {}): JobInput => ({
    name: 'st',
    source: { uri: join(TEXT_DIR, 'sentences.jsonl'), idColumn: 'id', inputColumn: 'text' },
    model: { uri },
    batchSize: 4,
    shardSize: 8,
    sink: { uri: join(tmp.dir, 'out') },
    ...extra,
  });
  const run = (input: JobInput) => runJob(parseJob(input), { settings: { redisUrl: REDIS_URL, prefix }, threads: 1, workers: 1 });
  async function column(files: string[], name: string): Promise<{ ids: string[]; rows: Float32Array[] }> {
    const tables = await Promise.all(files.map((f) => readPartFile(f)));
    return {
      ids: tables.flatMap((t) => [...t.getChild('id')!].map(String)),
      rows: tables.flatMap((t) => [...t.getChild(name)!].map((v) => Float32Array.from(v as Iterable<number>))),
    };
  }

  beforeAll(async () => {
    tmp = await tempDir('layertap-hub-run-');
    hub = await HubStandIn.start({
      [REPO]: { refs: Object.fromEntries(modes.map(([branch, mode, normalize]) => [branch, sentenceTransformersFiles(mode, normalize)])) },
      'layertap-test/plain-bert': { refs: { main: textModelFiles() } },
    });
    process.env.HF_HOME = join(tmp.dir, 'hf');
    process.env.HF_ENDPOINT = hub.url;
    delete process.env.HF_HUB_OFFLINE;
    delete process.env.HF_TOKEN;
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await cleanup();
    await hub.close();
    await tmp.remove();
  });

  it('the reference: pooling the PyTorch token states as sentence-transformers does gives the fixture’s own pooled captures', () => {
    for (const [mode, file] of [
      ['mean_tokens', 'mean'],
      ['max_tokens', 'max'],
      ['cls_token', 'cls'],
      ['lasttoken', 'last'],
    ] as const) {
      const captured = readNpy(join(EXPECTED, `encoder.layer.3__${file}.npy`)).data;
      expect(maxAbsDiff(Float32Array.from(sentenceTransformersReference(mode, false).flatMap((r) => [...r])), captured), mode).toBeLessThanOrEqual(1e-6);
    }
  });

  it.each(modes)(
    'hf:ORG/NAME@%s with no taps writes the sentence embedding (%s, normalize %s) as column embedding, equal to SentenceTransformer.encode within 1e-5',
    async (branch, mode, normalize) => {
      const s = await run(job(`hf:${REPO}@${branch}`));
      expect(s.status).toBe('committed');
      expect(s.rows).toBe(10);
      const { ids, rows } = await column(s.output.files, 'embedding');
      expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => `s${String(i).padStart(3, '0')}`));
      const want = sentenceTransformersReference(mode, normalize);
      rows.forEach((r, i) => expect(maxAbsDiff(r, want[i]!), `${branch} row ${i}`).toBeLessThanOrEqual(1e-5));
      const manifest = JSON.parse(await readFile(s.output.manifest!, 'utf8')) as { taps: Array<Record<string, unknown>>; truncatedRows?: number };
      expect(manifest.taps.map((t) => [t['as'], t['layer'], t['reduce'], t['normalize'], t['layout']])).toEqual([
        ['embedding', 'last_hidden_state', mode === 'lasttoken' ? 'last' : mode.replace(/_tokens?$/, ''), normalize ? 'l2' : 'none', 'pooled'],
      ]);
      // sentence_bert_config.json's max_seq_length (32), not tokenizer_config.json's 512, cuts the two long rows
      expect(manifest.truncatedRows).toBe(2);
    },
    60_000,
  );

  it('runs again offline from the cache with the same fingerprint and features; a commit of its own is another fingerprint', async () => {
    const uri = `hf:${REPO}`;
    const online = await run(job(uri));
    const before = hub.requests.length;
    process.env.HF_HUB_OFFLINE = '1';
    let offline;
    try {
      offline = await run(job(uri));
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(hub.requests.length).toBe(before);
    expect(offline.fingerprint).toBe(online.fingerprint);
    const [a, b] = [await column(online.output.files, 'embedding'), await column(offline.output.files, 'embedding')];
    expect(b.rows.map((r) => [...r])).toEqual(a.rows.map((r) => [...r]));
    // the same files at another commit (the branch moved): another vector space, another folder
    hub.setRepo(REPO, {
      refs: {
        ...Object.fromEntries(modes.map(([br, m, n]) => [br, sentenceTransformersFiles(m, n)])),
        main: { ...sentenceTransformersFiles('mean_tokens', true), 'README.md': 'moved' },
      },
    });
    const moved = await resolveJob(parseJob(job(uri)));
    expect(moved.model.hub).toEqual({ repo: REPO, revision: 'main', sha: hub.sha(REPO), file: 'onnx/model.onnx' });
    expect(moved.fingerprint).not.toBe(online.fingerprint);
  }, 60_000);

  it('explicit taps add layers after the embedding; a model that is not sentence-transformers needs them', async () => {
    const s = await run(job(`hf:${REPO}@cls`, { taps: [{ layer: 'pooler' }] }));
    expect(s.status).toBe('committed');
    const pooler = await column(s.output.files, 'pooler');
    const want = readNpy(join(EXPECTED, 'pooler__output.npy')).data;
    expect(maxAbsDiff(Float32Array.from(pooler.rows.flatMap((r) => [...r])), want)).toBeLessThanOrEqual(1e-5);
    expect((await column(s.output.files, 'embedding')).rows.length).toBe(10);

    let err: unknown;
    try {
      await resolveJob(parseJob(job('hf:layertap-test/plain-bert')));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JobConfigError);
    expect((err as JobConfigError).message).toBe(
      'taps: required (expected a list): hf:layertap-test/plain-bert is not a sentence-transformers repository (no modules.json), so it has no default tap; name the layers to tap',
    );
    expect((err as JobConfigError).fields).toEqual(['taps']);
  }, 60_000);
});
