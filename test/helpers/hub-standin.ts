import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A stand-in for the Hugging Face Hub on loopback, in its URL layout, with the answers
 * @huggingface/hub reads: `GET /api/models/{repo}/revision/{rev}` (sha, siblings), `POST
 * /api/models/{repo}/paths-info/{rev}` (oid, size, lfs), and `GET /{repo}/resolve/{rev}/{path}`
 * with ETag, X-Repo-Commit and Range; 404 with X-Error-Code (RepoNotFound, RevisionNotFound,
 * EntryNotFound), 401 for a private repository without its token, and a connection dropped
 * mid-file on request. Every request is recorded.
 */

/** One commit of a repository: its files by path. */
export type StandInFiles = Record<string, Uint8Array | string>;

/** A repository: its branches (and tags), each a commit; private ones answer only to {@link HubStandIn.token}. */
export interface StandInRepo {
  private?: boolean;
  refs: Record<string, StandInFiles>;
}

interface Commit {
  sha: string;
  files: Map<string, { bytes: Uint8Array; oid: string; sha256: string; lfs: boolean }>;
}

/** A request the stand-in answered. */
export interface StandInRequest {
  method: string;
  /** the path, without the query */
  path: string;
  status: number;
  range: string | null;
}

const TEXT_MODEL = fileURLToPath(new URL('../fixtures/text-model/', import.meta.url));

/** The text fixture's files, as a repository of the Hub holds them (the ONNX export under onnx/). */
export function textModelFiles(): StandInFiles {
  const read = (f: string) => new Uint8Array(readFileSync(join(TEXT_MODEL, f)));
  return {
    'onnx/model.onnx': read('model.onnx'),
    'tokenizer.json': read('tokenizer.json'),
    'tokenizer_config.json': read('tokenizer_config.json'),
    'config.json': read('config.json'),
    'vocab.txt': read('vocab.txt'),
    'README.md': '# a tiny BERT-style encoder with random weights\n',
  };
}

/** A sentence-transformers repository of the text fixture: a Transformer, a Pooling module of `mode`, and a Normalize module when `normalize`. */
export function sentenceTransformersFiles(mode: string, normalize: boolean, maxSeqLength = 32): StandInFiles {
  const flags = ['cls_token', 'mean_tokens', 'max_tokens', 'mean_sqrt_len_tokens', 'weightedmean_tokens', 'lasttoken'];
  const pooling = Object.fromEntries([['word_embedding_dimension', 32], ...flags.map((f) => [`pooling_mode_${f}`, f === mode]), ['include_prompt', true]]);
  const modules = [
    { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
    { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    ...(normalize ? [{ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }] : []),
  ];
  const base = textModelFiles();
  // a tokenizer whose own limit is far above max_seq_length, so that only the latter cuts at 32
  const tokenizerConfig = JSON.parse(Buffer.from(base['tokenizer_config.json'] as Uint8Array).toString('utf8')) as Record<string, unknown>;
  return {
    ...base,
    'tokenizer_config.json': JSON.stringify({ ...tokenizerConfig, model_max_length: 512 }),
    'modules.json': JSON.stringify(modules, null, 2),
    'sentence_bert_config.json': JSON.stringify({ max_seq_length: maxSeqLength, do_lower_case: true }),
    '1_Pooling/config.json': JSON.stringify(pooling, null, 2),
  };
}

function commitOf(files: StandInFiles, salt: string): Commit {
  const all = new Map<string, { bytes: Uint8Array; oid: string; sha256: string; lfs: boolean }>();
  const commit = createHash('sha1').update(salt);
  for (const [path, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    const bytes = typeof content === 'string' ? new Uint8Array(Buffer.from(content, 'utf8')) : content;
    const oid = createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    // as on the Hub: large and binary files live in LFS, named by their sha256
    all.set(path, { bytes, oid, sha256, lfs: path.endsWith('.onnx') || bytes.length > 10_000 });
    commit.update(`${path}\0${oid}\n`);
  }
  return { sha: commit.digest('hex'), files: all };
}

/** The stand-in Hub. */
export class HubStandIn {
  /** the token private repositories take */
  readonly token = 'hf_standin_token_0123456789';
  readonly requests: StandInRequest[] = [];
  private readonly repos = new Map<string, { private: boolean; refs: Map<string, Commit>; commits: Map<string, Commit> }>();
  private drops = new Map<string, number>();
  private corrupt = new Set<string>();

  private constructor(
    private readonly server: Server,
    /** e.g. http://127.0.0.1:41234 */
    readonly url: string,
  ) {}

  static async start(repos: Record<string, StandInRepo>): Promise<HubStandIn> {
    const holder: { hub?: HubStandIn } = {};
    const server = createServer((req, res) => {
      holder.hub!.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: String(err) }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const hub = new HubStandIn(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    holder.hub = hub;
    for (const [name, repo] of Object.entries(repos)) hub.setRepo(name, repo);
    return hub;
  }

  /** Adds or replaces a repository (a branch given new files becomes a new commit, as a push does). */
  setRepo(name: string, repo: StandInRepo): void {
    const refs = new Map<string, Commit>();
    const commits = this.repos.get(name)?.commits ?? new Map<string, Commit>();
    for (const [ref, files] of Object.entries(repo.refs)) {
      const c = commitOf(files, `${name}@${ref}`);
      refs.set(ref, c);
      commits.set(c.sha, c);
    }
    this.repos.set(name, { private: repo.private ?? false, refs, commits });
  }

  /** The commit a branch of a repository is at. */
  sha(repo: string, ref = 'main'): string {
    return this.repos.get(repo)!.refs.get(ref)!.sha;
  }

  /** The next full download of `path` stops after `bytes` bytes: the connection is dropped. */
  dropAfter(path: string, bytes: number): void {
    this.drops.set(path, bytes);
  }

  /** The next full download of `path` sends other bytes of the right length (one flipped), as a broken proxy might. */
  corruptNext(path: string): void {
    this.corrupt.add(path);
  }

  /** Requests so far that fetched a file's bytes (not the one-byte probes), by file path. */
  downloads(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.requests) {
      const m = /\/resolve\/[^/]+\/(.+)$/.exec(r.path);
      if (m && r.method === 'GET' && r.range === null && r.status === 200) out[m[1]!] = (out[m[1]!] ?? 0) + 1;
    }
    return out;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>, body?: Uint8Array | string): void {
    this.requests.push({ method: req.method ?? '?', path: (req.url ?? '').split('?')[0]!, status, range: req.headers.range ?? null });
    res.writeHead(status, headers);
    res.end(body);
  }

  private error(req: IncomingMessage, res: ServerResponse, status: number, code: string | null, message: string): void {
    this.send(req, res, status, { 'Content-Type': 'application/json', ...(code ? { 'X-Error-Code': code } : {}) }, JSON.stringify({ error: message }));
  }

  /** The repository and commit a request names, or null once it has answered with an error. */
  private find(req: IncomingMessage, res: ServerResponse, repoName: string, rev: string): Commit | null {
    const repo = this.repos.get(repoName);
    if (repo === undefined) {
      this.error(req, res, 404, 'RepoNotFound', 'Repository not found');
      return null;
    }
    if (repo.private && req.headers.authorization !== `Bearer ${this.token}`) {
      this.error(req, res, 401, null, 'Invalid credentials in Authorization header');
      return null;
    }
    const commit = repo.refs.get(rev) ?? repo.commits.get(rev);
    if (commit === undefined) {
      this.error(req, res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      return null;
    }
    return commit;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path);
    if (m && req.method === 'GET') {
      const commit = this.find(req, res, m[1]!, decodeURIComponent(m[2]!));
      if (commit === null) return;
      const body = {
        _id: createHash('sha1').update(m[1]!).digest('hex').slice(0, 24),
        id: m[1],
        sha: commit.sha,
        private: this.repos.get(m[1]!)!.private,
        gated: false,
        downloads: 0,
        likes: 0,
        lastModified: '2026-01-01T00:00:00.000Z',
        pipeline_tag: 'sentence-similarity',
        siblings: [...commit.files.keys()].map((rfilename) => ({ rfilename })),
      };
      this.send(req, res, 200, { 'Content-Type': 'application/json' }, JSON.stringify(body));
      return;
    }
    m = /^\/api\/models\/([^/]+\/[^/]+)\/paths-info\/([^/]+)$/.exec(path);
    if (m && req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const commit = this.find(req, res, m[1]!, decodeURIComponent(m[2]!));
      if (commit === null) return;
      const { paths } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { paths: string[] };
      const infos = paths.flatMap((p) => {
        const f = commit.files.get(p);
        if (f === undefined) return [];
        return [
          { type: 'file', path: p, oid: f.oid, size: f.bytes.length, ...(f.lfs ? { lfs: { oid: f.sha256, size: f.bytes.length, pointerSize: 134 } } : {}) },
        ];
      });
      this.send(req, res, 200, { 'Content-Type': 'application/json' }, JSON.stringify(infos));
      return;
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m && (req.method === 'GET' || req.method === 'HEAD')) {
      const commit = this.find(req, res, m[1]!, decodeURIComponent(m[2]!));
      if (commit === null) return;
      const file = commit.files.get(m[3]!);
      if (file === undefined) {
        this.error(req, res, 404, 'EntryNotFound', `${m[3]} does not exist on "${m[2]}"`);
        return;
      }
      const headers: Record<string, string> = {
        ETag: `"${file.lfs ? file.sha256 : file.oid}"`,
        ...(file.lfs ? { 'X-Linked-Etag': `"${file.sha256}"`, 'X-Linked-Size': String(file.bytes.length) } : {}),
        'X-Repo-Commit': commit.sha,
        'Accept-Ranges': 'bytes',
        'Content-Type': 'application/octet-stream',
      };
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        const end = range[2] ? Math.min(Number(range[2]), file.bytes.length - 1) : file.bytes.length - 1;
        const part = file.bytes.subarray(start, end + 1);
        this.send(req, res, 206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${file.bytes.length}`, 'Content-Length': String(part.length) }, part);
        return;
      }
      const drop = this.drops.get(m[3]!);
      if (drop !== undefined && req.method === 'GET') {
        this.drops.delete(m[3]!);
        this.requests.push({ method: 'GET', path, status: 200, range: null });
        res.writeHead(200, { ...headers, 'Content-Length': String(file.bytes.length) });
        res.write(file.bytes.subarray(0, drop), () => res.destroy());
        return;
      }
      let body = file.bytes;
      if (this.corrupt.delete(m[3]!) && req.method === 'GET') {
        body = body.slice();
        const at = body.length >> 1;
        body[at] = body[at]! ^ 0xff;
      }
      this.send(req, res, 200, { ...headers, 'Content-Length': String(body.length) }, req.method === 'HEAD' ? undefined : body);
      return;
    }
    this.error(req, res, 404, null, `no route ${req.method} ${path}`);
  }
}
