import { JobConfigError } from '../config/errors.js';
import { defaultColumnName } from '../config/names.js';
import type { ResolvedHubModel, ResolvedTap } from '../config/resolved.js';
import type { JobConfig, TapConfig } from '../config/schema.js';
import { HubError } from '../models/hub/errors.js';
import type { HubModel } from '../models/hub/resolve.js';
import { isHubUri } from '../models/hub/uri.js';
import type { ModelDescription } from '../models/types.js';
import { resolveTaps } from './plan-taps.js';

// Planning a model of the Hugging Face Hub (hf:ORG/NAME[@REVISION]): made local before the runtime
// sees it, and a sentence-transformers repository's sentence embedding as the default tap.

/** The column a sentence-transformers repository's sentence embedding is written to. */
export const EMBEDDING_COLUMN = 'embedding';

/** The outputs that hold an exported transformer's last hidden state (optimum's name, sentence-transformers' own). */
const TOKEN_OUTPUTS = ['last_hidden_state', 'token_embeddings'];

/** A Hub error as what planning reports: a job error naming model.uri (or model.file), unless another try may work. */
export function hubJobError(err: unknown, job: Pick<JobConfig, 'model'>): Error {
  if (err instanceof HubError) {
    if (err.retryable) return err;
    const field = err.kind === 'file' && job.model.file !== undefined ? 'model.file' : 'model.uri';
    return new JobConfigError(`${field}: ${err.message}`, [field]);
  }
  return new JobConfigError(`model.uri: ${err instanceof Error ? err.message : String(err)}`, ['model.uri']);
}

/** The job's hf: model fetched into the Hub cache, or null for a model of another kind (which takes no model.file). */
export async function planHubModel(job: JobConfig): Promise<HubModel | null> {
  if (!isHubUri(job.model.uri)) {
    if (job.model.file !== undefined) {
      throw new JobConfigError(`model.file: picks the ONNX file of an hf: model; '${job.model.uri}' names its file itself`, ['model.file']);
    }
    return null;
  }
  // the Hub client loads for hf: models only
  const { resolveHubModel } = await import('../models/hub/resolve.js');
  try {
    return await resolveHubModel(job.model.uri, job.model.file !== undefined ? { file: job.model.file } : {});
  } catch (err) {
    throw hubJobError(err, job);
  }
}

/** What the resolved job keeps of a Hub model: enough for another host to fetch the same commit. */
export function resolvedHub(hub: HubModel): ResolvedHubModel {
  return { repo: hub.repo, revision: hub.revision, sha: hub.sha, file: hub.file };
}

/** The text defaults a Hub model brings: its tokenizer and sentence-transformers' max_seq_length. */
export function hubTextDefaults(hub: HubModel | null): { tokenizer?: string; maxLength?: number } {
  if (hub === null) return {};
  const st = hub.sentenceTransformers;
  const maxLength = st !== null && 'embedding' in st ? st.embedding.maxSeqLength : undefined;
  return { ...(hub.tokenizer !== null ? { tokenizer: hub.tokenizer } : {}), ...(maxLength !== undefined ? { maxLength } : {}) };
}

/** Why a job without taps has no default one. */
function noDefaultTap(hub: HubModel | null, text: boolean, modelUri: string): string {
  const st = hub?.sentenceTransformers;
  if (hub === null) return 'name at least one layer to tap';
  if (st === null || st === undefined)
    return `${modelUri} is not a sentence-transformers repository (no modules.json), so it has no default tap; name the layers to tap`;
  if ('unsupported' in st) return `the sentence-transformers pipeline of ${modelUri} cannot be reproduced: ${st.unsupported}`;
  if (!text) return `${modelUri} takes no input_ids; name the layers to tap`;
  return `the ONNX file ${hub.file} has no output ${TOKEN_OUTPUTS.join(' or ')} to pool; name the layers to tap`;
}

/**
 * The job's taps against the model: for a sentence-transformers repository of the Hub, its
 * sentence embedding first (column `embedding`: the Pooling module's mode over the last hidden
 * state's real tokens, `l2` when a Normalize module follows), then the job's own.
 */
export function planTaps(job: JobConfig, desc: ModelDescription, text: boolean, hub: HubModel | null): ResolvedTap[] {
  const own = job.taps !== undefined ? resolveTaps(job.taps, desc, text, job.model.uri) : [];
  const st = hub?.sentenceTransformers;
  const layer = TOKEN_OUTPUTS.find((n) => desc.layerNames.includes(n));
  if (!text || st === null || st === undefined || !('embedding' in st) || layer === undefined) {
    if (job.taps === undefined) throw new JobConfigError(`taps: required (expected a list): ${noDefaultTap(hub, text, job.model.uri)}`, ['taps']);
    return own;
  }
  const embedding: TapConfig = { layer, at: 'output', as: EMBEDDING_COLUMN, reduce: st.embedding.reduce, normalize: st.embedding.normalize, dtype: 'float32' };
  const clash = (job.taps ?? []).findIndex((t) => (t.as ?? defaultColumnName(t)) === EMBEDDING_COLUMN);
  if (clash >= 0 || own.some((t) => t.as === EMBEDDING_COLUMN)) {
    const field = clash >= 0 ? `taps[${clash}].as` : 'taps';
    throw new JobConfigError(`${field}: column '${EMBEDDING_COLUMN}' holds the sentence embedding of ${job.model.uri}; set another 'as'`, [field]);
  }
  return [...resolveTaps([embedding], desc, text, job.model.uri), ...own];
}
