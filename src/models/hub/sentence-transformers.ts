import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What `SentenceTransformer.encode` does after the transformer, for a repository whose
 * `modules.json` is a Transformer, a Pooling module and optionally a Normalize module: the
 * pooling over the last hidden state's real tokens, whether the result is L2-normalised, and the
 * tokens per text.
 */
export interface SentenceEmbedding {
  /** the `reduce` mode equal to the Pooling module's */
  reduce: 'mean' | 'cls' | 'max' | 'last' | 'mean_sqrt_len';
  /** 'l2' when a Normalize module follows the pooling */
  normalize: 'l2' | 'none';
  /** `max_seq_length` of sentence_bert_config.json, when it sets one */
  maxSeqLength?: number;
}

/** A repository's sentence-transformers pipeline: its sentence embedding, or why layertap cannot reproduce it. */
export type SentenceTransformers = { embedding: SentenceEmbedding } | { unsupported: string };

/** The files a sentence-transformers repository describes its pipeline with, besides each module's folder. */
export const SENTENCE_TRANSFORMERS_FILES = ['modules.json', 'sentence_bert_config.json'] as const;

/** A module folder's files that say what it does (`1_Pooling/config.json`, `0_Transformer/sentence_bert_config.json`). */
export const MODULE_CONFIG = /^\d+_[^/]+\/(?:config|sentence_bert_config)\.json$/;

/** Pooling flags of `1_Pooling/config.json`, as the reduce mode each is (null: none equals it). */
const POOLING_FLAGS: Record<string, SentenceEmbedding['reduce'] | null> = {
  pooling_mode_mean_tokens: 'mean',
  pooling_mode_cls_token: 'cls',
  pooling_mode_max_tokens: 'max',
  pooling_mode_lasttoken: 'last',
  pooling_mode_mean_sqrt_len_tokens: 'mean_sqrt_len',
  pooling_mode_weightedmean_tokens: null,
};

/** The `pooling_mode` names of the Pooling module's constructor, as the flags they set. */
const POOLING_NAMES: Record<string, string> = {
  mean: 'pooling_mode_mean_tokens',
  cls: 'pooling_mode_cls_token',
  max: 'pooling_mode_max_tokens',
  lasttoken: 'pooling_mode_lasttoken',
  mean_sqrt_len_tokens: 'pooling_mode_mean_sqrt_len_tokens',
  weightedmean: 'pooling_mode_weightedmean_tokens',
};

async function readJson(file: string): Promise<Record<string, unknown> | null> {
  try {
    const v: unknown = JSON.parse(await readFile(file, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

interface StModule {
  kind: string;
  path: string;
}

/** The pooling mode a Pooling module's config names, or why none fits. */
function poolingMode(config: Record<string, unknown>, where: string): SentenceEmbedding['reduce'] | string {
  const named = typeof config['pooling_mode'] === 'string' ? POOLING_NAMES[config['pooling_mode']] : undefined;
  const flags = Object.keys(POOLING_FLAGS).filter((k) => config[k] === true || k === named);
  if (flags.length !== 1) {
    return flags.length === 0
      ? `${where} names no pooling mode`
      : `${where} concatenates several poolings (${flags.join(', ')}), which is not one tap; name the taps`;
  }
  const mode = POOLING_FLAGS[flags[0]!];
  return mode ?? `${where} pools with ${flags[0]}, which layertap has no reduce mode for; name the taps`;
}

/**
 * The sentence-transformers pipeline of a repository held in `dir`, or null when it has no
 * `modules.json` (it is not a sentence-transformers repository).
 */
export async function readSentenceTransformers(dir: string): Promise<SentenceTransformers | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(dir, 'modules.json'), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { unsupported: `modules.json cannot be read: ${(err as Error).message}` };
  }
  if (!Array.isArray(raw)) return { unsupported: 'modules.json is not a list of modules' };
  const modules: StModule[] = raw.map((m: { type?: unknown; path?: unknown }) => ({
    // 'sentence_transformers.models.Pooling' and the like: the class name decides
    kind: typeof m.type === 'string' ? (m.type.split('.').at(-1) ?? m.type) : '?',
    path: typeof m.path === 'string' ? m.path : '',
  }));
  const [transformer, pooling, ...rest] = modules;
  if (transformer?.kind !== 'Transformer') return { unsupported: `its first module is ${transformer?.kind ?? 'missing'}, not a Transformer` };
  if (pooling?.kind !== 'Pooling') return { unsupported: `its second module is ${pooling?.kind ?? 'missing'}, not a Pooling module` };
  const other = rest.find((m) => m.kind !== 'Normalize');
  if (other !== undefined) {
    return { unsupported: `its module ${other.kind} (${other.path || '.'}) comes after the pooling, and the ONNX file does not hold it; name the taps` };
  }
  const poolingFile = join(pooling.path, 'config.json');
  const poolingConfig = await readJson(join(dir, poolingFile));
  if (poolingConfig === null) return { unsupported: `${poolingFile} cannot be read` };
  const reduce = poolingMode(poolingConfig, poolingFile);
  if (!Object.values(POOLING_FLAGS).includes(reduce as SentenceEmbedding['reduce'])) return { unsupported: reduce };
  const bert = await readJson(join(dir, transformer.path, 'sentence_bert_config.json'));
  const maxSeqLength = bert?.['max_seq_length'];
  return {
    embedding: {
      reduce: reduce as SentenceEmbedding['reduce'],
      normalize: rest.length > 0 ? 'l2' : 'none',
      ...(typeof maxSeqLength === 'number' && Number.isInteger(maxSeqLength) && maxSeqLength > 0 ? { maxSeqLength } : {}),
    },
  };
}
