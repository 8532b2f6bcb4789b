/** A model repository on the Hugging Face Hub, as a job names it: `hf:ORG/NAME[@REVISION]`. */
export interface HubRef {
  /** 'ORG/NAME' (or a bare 'NAME', as older repositories are named) */
  repo: string;
  /** a branch, a tag or a commit sha. @defaultValue 'main' */
  revision: string;
}

const HUB_URI = /^hf:(?:\/\/)?/i;
// the Hub's own rule for names: letters, digits, '-', '_', '.'; not starting with '.' or '-'
const REPO = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;
const SHA = /^[0-9a-f]{40}$/;

/** True when `uri` names a model on the Hub (`hf:` or `hf://`). */
export function isHubUri(uri: string): boolean {
  return HUB_URI.test(uri);
}

/** True for a full commit sha: a revision that cannot move. */
export function isCommitSha(revision: string): boolean {
  return SHA.test(revision);
}

/**
 * `hf:ORG/NAME[@REVISION]` (or `hf://...`) as a repository and a revision.
 *
 * @example
 * parseHubUri('hf:sentence-transformers/all-MiniLM-L6-v2@main'); // { repo: 'sentence-transformers/all-MiniLM-L6-v2', revision: 'main' }
 */
export function parseHubUri(uri: string): HubRef {
  const rest = uri.replace(HUB_URI, '');
  const at = rest.indexOf('@');
  const repo = at < 0 ? rest : rest.slice(0, at);
  const revision = at < 0 ? 'main' : rest.slice(at + 1);
  if (!REPO.test(repo) || repo.includes('..') || revision === '' || /\s/.test(revision)) {
    throw new Error(`'${uri}' is not a Hub model id; write hf:ORG/NAME or hf:ORG/NAME@REVISION (a branch, tag or commit)`);
  }
  return { repo, revision };
}

/** A path inside a repository that stays inside it: relative, no '..', no empty or '.' segment. */
export function isRepoPath(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}
