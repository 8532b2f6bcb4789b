import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { getRepoFolderName } from '@huggingface/hub';
import lockfile from 'proper-lockfile';
import { HubError } from './errors.js';

/** What a file of a repository must be, as the Hub's paths-info tells it. */
export interface BlobFacts {
  /** the name of its blob: the sha256 of an LFS file, else the git object id (huggingface_hub's choice) */
  etag: string;
  size: number;
  /** LFS files: the sha256 of the content */
  sha256?: string;
  /** other files: the git blob id, sha1 of `blob <size>\0<content>` */
  gitOid?: string;
}

/** How long a lock whose holder stopped refreshing it is honoured (the holder refreshes it every half of this). */
const LOCK_STALE_MS = 20_000;

/**
 * One repository in the Hub cache, in huggingface_hub's layout, so that a Python user's cache
 * and layertap's are one: `models--ORG--NAME/blobs/<etag>` holds each file's bytes once,
 * `snapshots/<sha>/<path>` links to them per commit, `refs/<revision>` holds the commit a
 * branch or tag was last seen at.
 */
export class HubCache {
  /** `<cache>/models--ORG--NAME` */
  readonly repoDir: string;

  constructor(
    /** the cache folder (HF_HUB_CACHE) */
    readonly root: string,
    /** 'ORG/NAME' */
    readonly repo: string,
    /** how messages name the model: the job's hf: id. @defaultValue hf:ORG/NAME */
    private readonly label = `hf:${repo}`,
  ) {
    this.repoDir = join(root, getRepoFolderName({ type: 'model', name: repo }));
  }

  /** The folder of commit `sha`: the repository's files at that commit, those fetched so far. */
  snapshot(sha: string): string {
    return join(this.repoDir, 'snapshots', sha);
  }

  /** Where file `path` of commit `sha` is, fetched or not. */
  file(sha: string, path: string): string {
    return join(this.snapshot(sha), ...path.split('/'));
  }

  /** Whether file `path` of commit `sha` is in the cache (a link to a blob that is there). */
  has(sha: string, path: string): boolean {
    return existsSync(this.file(sha, path));
  }

  /** The commit `revision` (a branch or tag) was last seen at, or null. */
  async ref(revision: string): Promise<string | null> {
    try {
      const sha = (await readFile(join(this.repoDir, 'refs', ...revision.split('/')), 'utf8')).trim();
      return /^[0-9a-f]{40}$/.test(sha) ? sha : null;
    } catch {
      return null;
    }
  }

  /** Records that `revision` is at commit `sha` (written whole: a reader sees the old or the new commit). */
  async setRef(revision: string, sha: string): Promise<void> {
    const file = join(this.repoDir, 'refs', ...revision.split('/'));
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, sha);
    await rename(tmp, file);
  }

  /** The repository paths of commit `sha` that are in the cache. */
  async files(sha: string): Promise<string[]> {
    const root = this.snapshot(sha);
    try {
      const entries = await readdir(root, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => !e.isDirectory())
        .map((e) => relative(root, join(e.parentPath, e.name)).split('\\').join('/'))
        .filter((p) => existsSync(join(root, p)))
        .sort();
    } catch {
      return [];
    }
  }

  /**
   * Runs `fn` holding the lock of commit `sha` in the cache's `.locks` folder, so that the
   * processes and threads of one host fetch a commit's files once: the others wait, then find
   * them. A holder that dies stops refreshing its lock, which is taken over after 20 s.
   */
  async locked<T>(sha: string, fn: () => Promise<T>): Promise<T> {
    const lockPath = join(this.root, '.locks', getRepoFolderName({ type: 'model', name: this.repo }), `${sha}.layertap.lock`);
    await mkdir(dirname(lockPath), { recursive: true });
    const release = await lockfile.lock(this.snapshot(sha), {
      lockfilePath: lockPath,
      realpath: false,
      stale: LOCK_STALE_MS,
      retries: { forever: true, minTimeout: 100, maxTimeout: 1000 },
      // a holder taken for dead while alive only costs a second download: blobs are written under
      // names of their own and renamed whole
      onCompromised: () => undefined,
    });
    try {
      return await fn();
    } finally {
      await release().catch(() => undefined);
    }
  }

  /**
   * Writes `body` as file `path` of commit `sha`: into a temp file of its own beside the blobs,
   * checked against `facts` (size, then hash), renamed to its blob, then linked from the
   * snapshot. A body that ends early or differs leaves nothing behind, so a partial download is
   * never used. A blob the cache holds already (the same file at another commit) is linked
   * without `open` being called.
   */
  async store(sha: string, path: string, facts: BlobFacts, open: () => Promise<Readable>): Promise<void> {
    const blob = join(this.repoDir, 'blobs', facts.etag);
    if (!existsSync(blob)) {
      const body = await open();
      await mkdir(dirname(blob), { recursive: true });
      const tmp = `${blob}.${process.pid}.${randomBytes(4).toString('hex')}.incomplete`;
      const sha256 = createHash('sha256');
      const sha1 = createHash('sha1').update(`blob ${facts.size}\0`);
      let size = 0;
      const hashing = new Transform({
        transform(chunk: Buffer, _enc, done) {
          size += chunk.length;
          sha256.update(chunk);
          sha1.update(chunk);
          done(null, chunk);
        },
      });
      try {
        await pipeline(body, hashing, createWriteStream(tmp));
        const damaged =
          size !== facts.size
            ? `${size} bytes arrived of ${facts.size}`
            : facts.sha256 !== undefined && sha256.digest('hex') !== facts.sha256
              ? 'its sha256 differs from the one the Hub gives'
              : facts.sha256 === undefined && facts.gitOid !== undefined && sha1.digest('hex') !== facts.gitOid
                ? 'its git object id differs from the one the Hub gives'
                : null;
        if (damaged !== null) throw new HubError('damaged', `${this.label}: ${path}: the download is damaged (${damaged}); try again`);
        await rename(tmp, blob);
      } finally {
        await rm(tmp, { force: true });
      }
    }
    await this.link(this.file(sha, path), blob);
  }

  /** Points `file` at `blob` by a relative link (huggingface_hub's), or a copy where links cannot be made; replaced whole. */
  private async link(file: string, blob: string): Promise<void> {
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await symlink(relative(dirname(file), blob), tmp);
    } catch {
      await copyFile(blob, tmp);
    }
    await rename(tmp, file);
  }
}
