import { existsSync, readFileSync } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubError } from '../../src/models/hub/errors.js';
import { resolveHubModel, type HubModelOptions } from '../../src/models/hub/resolve.js';
import { hubSettingsFromEnv } from '../../src/models/hub/settings.js';
import { HubStandIn, sentenceTransformersFiles, textModelFiles } from '../helpers/hub-standin.js';
import { tempDir } from '../helpers/index.js';
import { TEXT_DIR } from '../helpers/models.js';

const REPO = 'layertap-test/tiny-st';
const MODEL_BYTES = readFileSync(join(TEXT_DIR, 'model.onnx'));

async function hubError(p: Promise<unknown>): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof HubError) return e;
    throw e;
  }
  throw new Error('expected a HubError');
}

describe('models by Hub id: the Hub cache', () => {
  let hub: HubStandIn;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let homes = 0;
  /** Settings of a fresh HF_HOME (or the given one) pointed at the stand-in. */
  const settingsFor = (home: string, env: NodeJS.ProcessEnv = {}) => hubSettingsFromEnv({ HF_HOME: home, HF_ENDPOINT: hub.url, ...env });
  const freshHome = () => join(tmp.dir, `home-${homes++}`);
  const resolve = (uri: string, home: string, opts: Omit<HubModelOptions, 'settings'> & { env?: NodeJS.ProcessEnv } = {}) =>
    resolveHubModel(uri, { ...(opts.file ? { file: opts.file } : {}), settings: settingsFor(home, opts.env) });

  beforeAll(async () => {
    tmp = await tempDir('layertap-hub-');
    hub = await HubStandIn.start({
      [REPO]: {
        refs: {
          main: { ...sentenceTransformersFiles('mean_tokens', true), 'onnx/model_quantized.onnx': new Uint8Array(MODEL_BYTES) },
          cls: sentenceTransformersFiles('cls_token', false, 24),
          weighted: sentenceTransformersFiles('weightedmean_tokens', false),
        },
      },
      'layertap-test/private-st': { private: true, refs: { main: sentenceTransformersFiles('max_tokens', false) } },
      'layertap-test/plain-bert': { refs: { main: textModelFiles() } },
      'layertap-test/no-onnx': {
        refs: { main: { 'config.json': '{}', 'pytorch_model.bin': 'weights', 'onnx/model_fp16.onnx': 'x', 'onnx/model_int8.onnx': 'y' } },
      },
    });
  });
  afterAll(async () => {
    await hub.close();
    await tmp.remove();
  });

  it("fetches a commit into huggingface_hub's layout, then answers from the cache: one request for a branch, none for a commit or offline", async () => {
    const home = freshHome();
    const cold = await resolve(`hf:${REPO}`, home);
    const sha = hub.sha(REPO);
    const repoDir = join(home, 'hub', 'models--layertap-test--tiny-st');
    expect(cold).toMatchObject({ repo: REPO, revision: 'main', sha, file: 'onnx/model.onnx', snapshot: join(repoDir, 'snapshots', sha) });
    expect(cold.model).toBe(join(repoDir, 'snapshots', sha, 'onnx', 'model.onnx'));
    expect(cold.tokenizer).toBe(join(repoDir, 'snapshots', sha, 'tokenizer.json'));
    // the revision, the file facts, then a probe and a download per file: 7 files
    expect(cold.requests).toBe(2 + 2 * 7);
    expect(hub.downloads()).toEqual(
      Object.fromEntries(
        ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'modules.json', 'sentence_bert_config.json', '1_Pooling/config.json', 'onnx/model.onnx'].map(
          (f) => [f, 1],
        ),
      ),
    );
    // refs/main names the commit; each snapshot file is a relative link to its blob, an LFS file's blob named by its sha256
    expect(await readFile(join(repoDir, 'refs', 'main'), 'utf8')).toBe(sha);
    expect((await lstat(cold.model)).isSymbolicLink()).toBe(true);
    const sha256 = (await import('node:crypto')).createHash('sha256').update(MODEL_BYTES).digest('hex');
    expect(await readlink(cold.model)).toBe(`../../../blobs/${sha256}`);
    expect(Buffer.compare(await readFile(cold.model), MODEL_BYTES)).toBe(0);
    expect((await readdir(join(repoDir, 'blobs'))).length).toBe(7);

    const before = hub.requests.length;
    const warm = await resolve(`hf:${REPO}`, home);
    expect({ ...warm, requests: 0 }).toEqual({ ...cold, requests: 0 });
    expect(warm.requests).toBe(1);
    const pinned = await resolve(`hf:${REPO}@${sha}`, home);
    expect([pinned.requests, pinned.model]).toEqual([0, cold.model]);
    const offline = await resolve(`hf://${REPO}`, home, { env: { HF_HUB_OFFLINE: '1' } });
    expect([offline.requests, offline.sha, offline.model]).toEqual([0, sha, cold.model]);
    expect(hub.requests.length).toBe(before + 1);
  });

  it('follows a moved branch to its new commit, sharing the unchanged blobs', async () => {
    const home = freshHome();
    const first = await resolve('hf:layertap-test/plain-bert', home);
    const downloads = hub.downloads()['onnx/model.onnx'];
    hub.setRepo('layertap-test/plain-bert', { refs: { main: { ...textModelFiles(), 'README.md': '# retrained? no: a new README\n' } } });
    const moved = await resolve('hf:layertap-test/plain-bert', home);
    expect(moved.sha).not.toBe(first.sha);
    expect(moved.sha).toBe(hub.sha('layertap-test/plain-bert'));
    expect(moved.model).not.toBe(first.model);
    // the ONNX file's blob is the same: linked, not downloaded again
    expect(hub.downloads()['onnx/model.onnx']).toBe(downloads);
    expect(await readlink(moved.model)).toBe(await readlink(first.model));
  });

  it('refuses, in one line each: an unknown repository, an unknown revision, a missing ONNX file (naming those there are), a private model without its token', async () => {
    const home = freshHome();
    const cases: Array<[string, HubModelOptions['file'], string, string]> = [
      [
        'hf:layertap-test/nothing-here',
        undefined,
        'repository',
        `hf:layertap-test/nothing-here: no model repository layertap-test/nothing-here on ${hub.url} (a private or gated one needs HF_TOKEN)`,
      ],
      [`hf:${REPO}@v9`, undefined, 'revision', `hf:${REPO}@v9: ${REPO} has no branch, tag or commit 'v9'`],
      [
        'hf:layertap-test/no-onnx',
        undefined,
        'file',
        `hf:layertap-test/no-onnx: layertap-test/no-onnx at ${hub.sha('layertap-test/no-onnx').slice(0, 12)} has no onnx/model.onnx or model.onnx; its ONNX files are onnx/model_fp16.onnx and onnx/model_int8.onnx: model.file picks one`,
      ],
      [
        `hf:${REPO}`,
        'onnx/model_O4.onnx',
        'file',
        `hf:${REPO}: ${REPO} at ${hub.sha(REPO).slice(0, 12)} has no onnx/model_O4.onnx; its ONNX files are onnx/model.onnx and onnx/model_quantized.onnx: model.file picks one`,
      ],
      [
        'hf:layertap-test/private-st',
        undefined,
        'auth',
        `hf:layertap-test/private-st: ${hub.url} answered 401 (unauthorized) for layertap-test/private-st: it needs a token; set HF_TOKEN (or log in with \`huggingface-cli login\`)`,
      ],
      [
        `hf:${REPO}/onnx/model.onnx`,
        undefined,
        '',
        `'hf:${REPO}/onnx/model.onnx' is not a Hub model id; write hf:ORG/NAME or hf:ORG/NAME@REVISION (a branch, tag or commit)`,
      ],
    ];
    for (const [uri, file, kind, message] of cases) {
      let err: Error;
      try {
        await resolve(uri, home, file ? { file } : {});
        throw new Error(`${uri} resolved`);
      } catch (e) {
        err = e as Error;
      }
      expect(err.message).toBe(message);
      expect(err.message).not.toContain('\n');
      if (kind !== '') expect([(err as HubError).kind, (err as HubError).retryable]).toEqual([kind, false]);
    }
    // with the token, the private model is there; a wrong one is named as refused
    const ok = await resolve('hf:layertap-test/private-st', home, { env: { HF_TOKEN: hub.token } });
    expect(ok.sha).toBe(hub.sha('layertap-test/private-st'));
    const wrong = await hubError(resolve('hf:layertap-test/private-st', freshHome(), { env: { HF_TOKEN: 'hf_wrong' } }));
    expect(wrong.message).toBe(`hf:layertap-test/private-st: ${hub.url} refused the token (HF_TOKEN) for layertap-test/private-st (401)`);
  });

  it('offline, a model the cache lacks is a clear error, and nothing is asked of the Hub', async () => {
    const before = hub.requests.length;
    const home = freshHome();
    const e = await hubError(resolve(`hf:${REPO}`, home, { env: { HF_HUB_OFFLINE: '1' } }));
    expect(e.kind).toBe('offline');
    expect(e.message).toBe(
      `hf:${REPO}: HF_HUB_OFFLINE is set, and the Hub cache ${join(home, 'hub')} has not seen 'main' of ${REPO}; run once online, or unset HF_HUB_OFFLINE`,
    );
    expect(hub.requests.length).toBe(before);
  });

  it('never uses a partial download: a connection dropped mid-file leaves nothing behind, and the next try completes the commit', async () => {
    const home = freshHome();
    hub.dropAfter('onnx/model.onnx', 4096);
    const e = await hubError(resolve(`hf:${REPO}@cls`, home));
    expect([e.kind, e.retryable]).toEqual(['unavailable', true]);
    expect(e.message).toMatch(new RegExp(`^hf:${REPO}@cls: the Hub at ${hub.url} did not answer while sending onnx/model.onnx \\(.+\\); try again`));
    const sha = hub.sha(REPO, 'cls');
    const repoDir = join(home, 'hub', 'models--layertap-test--tiny-st');
    const blobs = await readdir(join(repoDir, 'blobs'));
    // the small files arrived; the ONNX file did not, and no piece of it is left
    expect(blobs.length).toBe(6);
    expect(blobs.filter((b) => b.includes('incomplete'))).toEqual([]);
    expect(await readdir(join(repoDir, 'snapshots', sha))).not.toContain('onnx');
    const again = await resolve(`hf:${REPO}@cls`, home);
    expect(Buffer.compare(await readFile(again.model), MODEL_BYTES)).toBe(0);
    // only the ONNX file was fetched the second time
    expect(again.requests).toBe(1 + 1 + 2);
  });

  it('checks each file against the size and hash the Hub gives before it is used: other bytes of the right length are refused', async () => {
    let home = '';
    for (const file of ['onnx/model.onnx', 'tokenizer.json']) {
      home = freshHome();
      hub.corruptNext(file);
      const e = await hubError(resolve(`hf:${REPO}@cls`, home));
      expect([e.kind, e.retryable]).toEqual(['damaged', true]);
      expect(e.message).toBe(
        `hf:${REPO}@cls: ${file}: the download is damaged (its ${file.endsWith('.onnx') ? 'sha256' : 'git object id'} differs from the one the Hub gives); try again`,
      );
      const sha = hub.sha(REPO, 'cls');
      expect(existsSync(join(home, 'hub', 'models--layertap-test--tiny-st', 'snapshots', sha, ...file.split('/')))).toBe(false);
    }
    expect(Buffer.compare(await readFile((await resolve(`hf:${REPO}@cls`, home)).model), MODEL_BYTES)).toBe(0);
  });

  it('fetches a commit once when several callers want it at the same time (a lock in the cache)', async () => {
    const home = freshHome();
    const before = hub.downloads()['onnx/model_quantized.onnx'] ?? 0;
    const got = await Promise.all([1, 2, 3, 4].map(() => resolve(`hf:${REPO}`, home, { file: 'onnx/model_quantized.onnx' })));
    expect(new Set(got.map((g) => g.model)).size).toBe(1);
    expect(hub.downloads()['onnx/model_quantized.onnx']).toBe(before + 1);
    // one caller fetched 7 files; the others asked for the commit only
    expect(got.map((g) => g.requests).sort((a, b) => a - b)).toEqual([1, 1, 1, 2 + 2 * 7]);
  });

  it("reads a sentence-transformers repository's pipeline: the Pooling module's mode, a Normalize module, max_seq_length", async () => {
    const home = freshHome();
    expect((await resolve(`hf:${REPO}`, home)).sentenceTransformers).toEqual({ embedding: { reduce: 'mean', normalize: 'l2', maxSeqLength: 32 } });
    expect((await resolve(`hf:${REPO}@cls`, home)).sentenceTransformers).toEqual({ embedding: { reduce: 'cls', normalize: 'none', maxSeqLength: 24 } });
    expect((await resolve(`hf:${REPO}@weighted`, home)).sentenceTransformers).toEqual({
      unsupported: '1_Pooling/config.json pools with pooling_mode_weightedmean_tokens, which layertap has no reduce mode for; name the taps',
    });
    expect((await resolve('hf:layertap-test/plain-bert', home)).sentenceTransformers).toBeNull();
  });
});
