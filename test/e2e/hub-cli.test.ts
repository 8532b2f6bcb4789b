import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubStandIn, sentenceTransformersFiles, textModelFiles } from '../helpers/hub-standin.js';
import { runCli } from '../helpers/cli.js';
import { REDIS_URL, tempDir, testPrefix } from '../helpers/index.js';
import { TEXT_DIR } from '../helpers/models.js';

const REPO = 'layertap-test/tiny-st';

describe('the CLI on models by Hub id', () => {
  let hub: HubStandIn;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const { prefix, cleanup } = testPrefix();
  let homes = 0;
  const env = (home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    HF_HOME: home,
    HF_ENDPOINT: hub.url,
    HF_TOKEN: undefined,
    HF_HUB_OFFLINE: undefined,
    HF_HUB_CACHE: undefined,
    REDIS_URL,
    LAYERTAP_PREFIX: prefix,
    ...extra,
  });
  const freshHome = () => join(tmp.dir, `home-${homes++}`);

  beforeAll(async () => {
    tmp = await tempDir('layertap-hub-cli-');
    hub = await HubStandIn.start({
      [REPO]: { refs: { main: sentenceTransformersFiles('mean_tokens', true) } },
      'layertap-test/private-st': { private: true, refs: { main: sentenceTransformersFiles('cls_token', false) } },
      'layertap-test/only-quantized': {
        refs: { main: { ...Object.fromEntries(Object.entries(textModelFiles()).filter(([f]) => !f.endsWith('.onnx'))), 'onnx/model_quantized.onnx': 'q' } },
      },
    });
  });
  afterAll(async () => {
    await cleanup();
    await hub.close();
    await tmp.remove();
  });

  it('layers hf:ORG/NAME lists the inputs and modules of the repository’s ONNX file, and names the commit', async () => {
    const r = await runCli(['layers', `hf:${REPO}`, '--json'], env(freshHome()), 30_000);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { model: string; hub: unknown; inputs: Array<{ name: string }>; modules: Array<{ path: string }> };
    expect(j.model).toBe(`hf:${REPO}`);
    expect(j.hub).toEqual({ repo: REPO, revision: 'main', sha: hub.sha(REPO), file: 'onnx/model.onnx' });
    expect(j.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
    expect(j.modules.filter((m) => !m.path.includes('.') || /^encoder\.layer\.\d$/.test(m.path)).map((m) => m.path)).toEqual([
      'embeddings',
      'encoder',
      'encoder.layer.0',
      'encoder.layer.1',
      'encoder.layer.2',
      'encoder.layer.3',
      'pooler',
    ]);
    const text = await runCli(['layers', `hf:${REPO}`, '--depth', '1'], env(freshHome()), 30_000);
    expect(text.stdout.split('\n')[0]).toMatch(
      new RegExp(`^model hf:${REPO}: onnx/model.onnx at commit ${hub.sha(REPO)} \\(.+/snapshots/${hub.sha(REPO)}/onnx/model.onnx\\)$`),
    );
  }, 40_000);

  it('names what is wrong in one line, exit 2: an unknown repository, revision or ONNX file, a private model without a token', async () => {
    const home = freshHome();
    const cases: Array<[string[], string]> = [
      [
        ['hf:layertap-test/missing'],
        `hf:layertap-test/missing: no model repository layertap-test/missing on ${hub.url} (a private or gated one needs HF_TOKEN)`,
      ],
      [[`hf:${REPO}@nope`], `hf:${REPO}@nope: ${REPO} has no branch, tag or commit 'nope'`],
      [
        ['hf:layertap-test/only-quantized'],
        `hf:layertap-test/only-quantized: layertap-test/only-quantized at ${hub.sha('layertap-test/only-quantized').slice(0, 12)} has no onnx/model.onnx or model.onnx; its ONNX files are onnx/model_quantized.onnx: model.file picks one`,
      ],
      [
        ['hf:layertap-test/private-st'],
        `hf:layertap-test/private-st: ${hub.url} answered 401 (unauthorized) for layertap-test/private-st: it needs a token; set HF_TOKEN (or log in with \`huggingface-cli login\`)`,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['layers', ...args], env(home), 30_000);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toBe(`layertap: ${message}\n`);
      expect(r.stdout).toBe('');
    }
    const token = await runCli(['layers', 'hf:layertap-test/private-st', '--json'], env(home, { HF_TOKEN: hub.token }), 30_000);
    expect(token.code, token.stderr).toBe(0);
  }, 60_000);

  it('processes of one host that want the same model at once download each file once (a lock in the Hub cache)', async () => {
    const home = freshHome();
    const before = hub.downloads();
    const runs = await Promise.all([1, 2, 3].map(() => runCli(['layers', `hf:${REPO}`, '--json'], env(home), 60_000)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const after = hub.downloads();
    for (const file of ['onnx/model.onnx', 'tokenizer.json', 'modules.json', '1_Pooling/config.json']) expect(after[file]! - (before[file] ?? 0), file).toBe(1);
  }, 70_000);

  it('run: a job file naming hf:ORG/NAME and no taps; again with HF_HUB_OFFLINE=1 from the cache, with no request and the same fingerprint', async () => {
    const home = freshHome();
    const file = join(tmp.dir, 'st.yaml');
    await writeFile(
      file,
      [
        'name: st',
        `source: { uri: ${join(TEXT_DIR, 'sentences.jsonl')}, idColumn: id, inputColumn: text }`,
        `model: { uri: "hf:${REPO}" }`,
        'sink: { uri: ./out }',
        'batchSize: 4',
      ].join('\n'),
    );
    const counts: number[] = [];
    const summaries: Array<{ status: string; rows: number; fingerprint: string; output: { uri: string } }> = [];
    for (const extra of [{}, {}, { HF_HUB_OFFLINE: '1' }]) {
      const before = hub.requests.length;
      const r = await runCli(['run', file, '--threads', '1', '--json'], env(home, extra), 60_000);
      expect(r.code, r.stderr).toBe(0);
      counts.push(hub.requests.length - before);
      summaries.push(JSON.parse(r.stdout) as (typeof summaries)[number]);
    }
    // cold: the commit, the file facts, then a probe and a download for each of 7 files; then the commit only; offline nothing
    expect(counts).toEqual([16, 1, 0]);
    expect(summaries.map((s) => [s.status, s.rows])).toEqual([
      ['committed', 10],
      ['committed', 10],
      ['committed', 10],
    ]);
    expect(new Set(summaries.map((s) => s.fingerprint)).size).toBe(1);
    // the sink is read against the job file's folder
    expect(summaries[0]!.output.uri.startsWith(join(tmp.dir, 'out', 'st'))).toBe(true);
  }, 200_000);
});
