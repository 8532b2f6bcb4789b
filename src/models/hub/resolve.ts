import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { downloadFile, HubApiError, modelInfo, pathsInfo } from '@huggingface/hub';
import { HubCache, type BlobFacts } from './cache.js';
import { HubError, type HubErrorKind } from './errors.js';
import { MODULE_CONFIG, readSentenceTransformers, SENTENCE_TRANSFORMERS_FILES, type SentenceTransformers } from './sentence-transformers.js';
import { hubSettingsFromEnv, type HubSettings } from './settings.js';
import { isCommitSha, isRepoPath, parseHubUri, type HubRef } from './uri.js';

/** A model of the Hub, fetched into the cache: the local files a runtime and a tokenizer read. */
export interface HubModel {
  /** 'ORG/NAME' */
  repo: string;
  /** the revision the job names ('main' unless it names one) */
  revision: string;
  /** the commit that revision is at: part of the fingerprint, and what workers fetch */
  sha: string;
  /** the ONNX file's path in the repository ('onnx/model.onnx') */
  file: string;
  /** the local folder of the commit (`<cache>/models--ORG--NAME/snapshots/<sha>`) */
  snapshot: string;
  /** the local ONNX file */
  model: string;
  /** the local tokenizer.json (the repository's root one, else the one beside the ONNX file), null when there is none */
  tokenizer: string | null;
  /** the repository's sentence-transformers pipeline, null when it has none (no modules.json) */
  sentenceTransformers: SentenceTransformers | null;
  /** HTTP requests this resolution made (0 when the cache had all) */
  requests: number;
}

/** Options of {@link resolveHubModel}. */
export interface HubModelOptions {
  /** the ONNX file in the repository. @defaultValue onnx/model.onnx, else a model.onnx at the root */
  file?: string;
  /** @defaultValue from the environment (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE) */
  settings?: HubSettings;
  /** what HTTP requests go through. @defaultValue the global fetch */
  fetch?: typeof fetch;
}

/** The ONNX files layertap looks for when the job names none, in order. */
export const DEFAULT_ONNX_FILES = ['onnx/model.onnx', 'model.onnx'] as const;

/** Small files that describe the model and its tokenizer, fetched when the repository has them. */
const COMPANIONS = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', ...SENTENCE_TRANSFORMERS_FILES];

/** A fetch that counts its requests and remembers the Hub's error code (X-Error-Code) of the last refusal. */
function watchedFetch(base: typeof fetch): { fetch: typeof fetch; requests: () => number; errorCode: () => string | null } {
  let requests = 0;
  let errorCode: string | null = null;
  const watched = async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    requests++;
    const res = await base(input, init);
    if (!res.ok) errorCode = res.headers.get('x-error-code');
    return res;
  };
  return { fetch: watched, requests: () => requests, errorCode: () => errorCode };
}

/** Each message starts with the model as the job names it. */
function named(ref: HubRef): string {
  return `hf:${ref.repo}${ref.revision === 'main' ? '' : `@${ref.revision}`}`;
}

/** `a, b and c`. */
function list(names: readonly string[]): string {
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : (names[0] ?? '');
}

/** A failed Hub request as a {@link HubError} of the kind the Hub's answer says. */
function hubError(err: unknown, ref: HubRef, settings: HubSettings, errorCode: string | null, path?: string): HubError {
  if (err instanceof HubError) return err;
  const at = named(ref);
  const token = settings.token !== undefined;
  const make = (kind: HubErrorKind, message: string) => new HubError(kind, `${at}: ${message}`, { cause: err });
  if (err instanceof HubApiError) {
    const status = err.statusCode;
    if (errorCode === 'GatedRepo')
      return make('auth', `${ref.repo} is gated: accept its conditions at ${settings.endpoint}/${ref.repo} and set HF_TOKEN to a token of that account`);
    if (errorCode === 'RepoNotFound' || (status === 404 && path === undefined && errorCode !== 'RevisionNotFound')) {
      return make(
        'repository',
        `no model repository ${ref.repo} on ${settings.endpoint}${token ? ' that the token (HF_TOKEN) can read' : ' (a private or gated one needs HF_TOKEN)'}`,
      );
    }
    if (errorCode === 'RevisionNotFound') return make('revision', `${ref.repo} has no branch, tag or commit '${ref.revision}'`);
    if (errorCode === 'EntryNotFound' || status === 404) return make('file', `${ref.repo} has no file ${path ?? '?'}`);
    if (status === 401 || status === 403) {
      return make(
        'auth',
        token
          ? `${settings.endpoint} refused the token (HF_TOKEN) for ${ref.repo} (${status})`
          : `${settings.endpoint} answered ${status} (${status === 401 ? 'unauthorized' : 'forbidden'}) for ${ref.repo}: it needs a token; set HF_TOKEN (or log in with \`huggingface-cli login\`)`,
      );
    }
    if (status >= 500 || status === 408 || status === 429) return make('unavailable', `${settings.endpoint} answered ${status}; try again later`);
    return make('auth', `${settings.endpoint} refused the request for ${ref.repo} (${status}): ${err.message}`);
  }
  if (err instanceof TypeError && /access token must start with 'hf_'/.test(err.message)) {
    return make('auth', 'the token (HF_TOKEN) is not a Hub token: it must start with hf_');
  }
  const cause = err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err);
  return make(
    'unavailable',
    `the Hub at ${settings.endpoint} did not answer${path ? ` while sending ${path}` : ''} (${cause}); try again, or set HF_HUB_OFFLINE=1 to run from the cache`,
  );
}

/** The ONNX file to use of those `files` holds, or null. */
function chooseOnnx(files: ReadonlySet<string>, wanted: string | undefined): string | null {
  if (wanted !== undefined) return files.has(wanted) ? wanted : null;
  return DEFAULT_ONNX_FILES.find((f) => files.has(f)) ?? null;
}

/** The error for a repository without the ONNX file the job wants, naming those it has. */
function noOnnx(ref: HubRef, sha: string, files: readonly string[], wanted: string | undefined, offline: boolean): HubError {
  const onnx = files.filter((f) => f.endsWith('.onnx')).sort();
  const missing = wanted ?? DEFAULT_ONNX_FILES.join(' or ');
  const where = offline ? `the cached commit ${sha.slice(0, 12)} of ${ref.repo} (HF_HUB_OFFLINE is set)` : `${ref.repo} at ${sha.slice(0, 12)}`;
  const has =
    onnx.length > 0
      ? `its ONNX files are ${list(onnx)}: model.file picks one`
      : 'it has no ONNX file (export one with `optimum-cli export onnx`, or use a repository that carries one)';
  return new HubError('file', `${named(ref)}: ${where} has no ${missing}; ${has}`);
}

/**
 * The files of a commit the job needs, in the order they are fetched: the descriptions first,
 * the ONNX file's external data, the ONNX file last, so that a cached ONNX file means its
 * commit's other files are cached too.
 */
function neededFiles(files: readonly string[], onnx: string): string[] {
  const dir = posix.dirname(onnx);
  const base = posix.basename(onnx);
  const has = new Set(files);
  // the tokenizer beside the ONNX file when the root has none
  const beside = dir !== '.' && !has.has('tokenizer.json') ? [`${dir}/tokenizer.json`, `${dir}/tokenizer_config.json`] : [];
  const companions = [...COMPANIONS, ...beside].filter((f) => has.has(f));
  const modules = files.filter((f) => MODULE_CONFIG.test(f));
  // external data: model.onnx_data, model.onnx.data, model.onnx_data_1, ... beside the ONNX file
  const external = files.filter((f) => f !== onnx && posix.dirname(f) === dir && posix.basename(f).startsWith(base) && !f.endsWith('.onnx'));
  return [...companions, ...modules, ...external, onnx].filter(isRepoPath);
}

/** What a cached commit gives: the local files, the tokenizer and the sentence-transformers pipeline. */
async function fromCache(cache: HubCache, ref: HubRef, sha: string, file: string, requests: number): Promise<HubModel> {
  const tokenizer = ['tokenizer.json', `${posix.dirname(file)}/tokenizer.json`].find((f) => isRepoPath(f) && cache.has(sha, f));
  return {
    repo: ref.repo,
    revision: ref.revision,
    sha,
    file,
    snapshot: cache.snapshot(sha),
    model: cache.file(sha, file),
    tokenizer: tokenizer !== undefined ? cache.file(sha, tokenizer) : null,
    sentenceTransformers: await readSentenceTransformers(cache.snapshot(sha)),
    requests,
  };
}

/**
 * Makes the Hub model `uri` (`hf:ORG/NAME[@REVISION]`) local: resolves the revision to a commit,
 * fetches the ONNX file (`file`), its external data, the tokenizer and the sentence-transformers
 * files into the Hub cache (once per host: a lock in the cache), and returns where they are.
 * A commit whose ONNX file is cached asks nothing of the Hub; a branch or tag costs one request
 * to learn its commit (none with HF_HUB_OFFLINE, which reads the commit the cache last saw).
 * Fails with a {@link HubError}.
 */
export async function resolveHubModel(uri: string, opts: HubModelOptions = {}): Promise<HubModel> {
  const ref = parseHubUri(uri);
  const settings = opts.settings ?? hubSettingsFromEnv();
  if (opts.file !== undefined && (!isRepoPath(opts.file) || !opts.file.endsWith('.onnx'))) {
    throw new HubError('file', `${named(ref)}: model.file '${opts.file}' is not the path of an .onnx file in the repository (e.g. onnx/model_quantized.onnx)`);
  }
  const cache = new HubCache(settings.cacheDir, ref.repo, named(ref));
  const http = watchedFetch(opts.fetch ?? fetch);
  const creds = { hubUrl: settings.endpoint, fetch: http.fetch, ...(settings.token !== undefined ? { accessToken: settings.token } : {}) };
  const ask = async <T>(call: () => Promise<T>, path?: string): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      throw hubError(err, ref, settings, http.errorCode(), path);
    }
  };

  let sha = isCommitSha(ref.revision) ? ref.revision : settings.offline ? await cache.ref(ref.revision) : null;
  if (sha !== null) {
    const cached = await cache.files(sha);
    const file = chooseOnnx(new Set(cached), opts.file);
    if (file !== null) return fromCache(cache, ref, sha, file, 0);
    if (settings.offline) {
      if (cached.length > 0) throw noOnnx(ref, sha, cached, opts.file, true);
      throw new HubError(
        'offline',
        `${named(ref)}: HF_HUB_OFFLINE is set, and the Hub cache ${settings.cacheDir} has no files of commit ${sha}; run once online`,
      );
    }
  } else if (settings.offline) {
    throw new HubError(
      'offline',
      `${named(ref)}: HF_HUB_OFFLINE is set, and the Hub cache ${settings.cacheDir} has not seen '${ref.revision}' of ${ref.repo}; run once online, or unset HF_HUB_OFFLINE`,
    );
  }

  const info = await ask(() => modelInfo({ name: ref.repo, revision: ref.revision, additionalFields: ['sha', 'filePaths'], ...creds }));
  if (!isCommitSha(info.sha)) throw new HubError('unavailable', `${named(ref)}: ${settings.endpoint} gave no commit for '${ref.revision}'`);
  sha = info.sha;
  const commit = sha;
  if (!isCommitSha(ref.revision)) await cache.setRef(ref.revision, commit);
  const file = chooseOnnx(new Set(info.filePaths), opts.file);
  if (file === null) throw noOnnx(ref, commit, info.filePaths, opts.file, false);
  const needed = neededFiles(info.filePaths, file);
  if (needed.some((f) => !cache.has(commit, f))) {
    await cache.locked(commit, async () => {
      // another process may have fetched them while this one waited for the lock
      const missing = needed.filter((f) => !cache.has(commit, f));
      if (missing.length === 0) return;
      const facts = new Map<string, BlobFacts>();
      for (const p of await ask(() => pathsInfo({ repo: ref.repo, paths: missing, revision: commit, ...creds }))) {
        const etag = p.lfs?.oid ?? p.xetHash ?? p.oid;
        if (etag === undefined) continue;
        facts.set(p.path, { etag, size: p.lfs?.size ?? p.size, ...(p.lfs ? { sha256: p.lfs.oid } : p.oid !== undefined ? { gitOid: p.oid } : {}) });
      }
      for (const path of missing) {
        const fact = facts.get(path);
        if (fact === undefined) throw new HubError('file', `${named(ref)}: ${ref.repo} has no file ${path} at ${commit.slice(0, 12)}`);
        await ask(
          () =>
            cache.store(commit, path, fact, async () => {
              const blob = await downloadFile({ repo: ref.repo, path, revision: commit, ...creds });
              if (blob === null) throw new HubError('file', `${named(ref)}: ${ref.repo} has no file ${path} at ${commit.slice(0, 12)}`);
              return Readable.fromWeb(blob.stream() as WebReadableStream<Uint8Array>);
            }),
          path,
        );
      }
    });
  }
  return fromCache(cache, ref, commit, file, http.requests());
}
