import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULTS } from '../config/defaults.js';
import { JobConfigError } from '../config/errors.js';
import { absoluteUri } from '../config/names.js';
import type { ResolvedChunk, ResolvedText } from '../config/resolved.js';
import type { ChunkConfig, JobConfig } from '../config/schema.js';
import { formatInput } from '../models/model-inputs.js';
import { modelTapColumns, type RuntimeRegistry } from '../models/registry.js';
import type { ResolvedTap } from '../config/resolved.js';
import type { ModelDescription } from '../models/types.js';

const TEXT_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;

/** A model that takes token ids is fed text. */
export function takesText(desc: ModelDescription): boolean {
  return desc.inputs.some((i) => i.name === 'input_ids');
}

/**
 * What makes text rows token ids for this model: the tokenizer, maxLength, prefix and the inputs
 * to fill. `defaults`: what the model's repository says, below the job's own settings (a Hub
 * model's tokenizer and sentence-transformers' max_seq_length).
 */
export async function resolveText(
  job: JobConfig,
  desc: ModelDescription,
  modelUri: string,
  cwd: string,
  defaults: { tokenizer?: string; maxLength?: number } = {},
): Promise<ResolvedText> {
  const inputs = desc.inputs.map((input): ResolvedText['inputs'][number] => {
    const name = TEXT_INPUTS.find((n) => n === input.name);
    if (name === undefined) {
      throw new JobConfigError(
        `model.uri: the model takes an input '${input.name}' (${formatInput(input)}) that layertap cannot fill from text; it fills ${TEXT_INPUTS.join(', ')}`,
        ['model.uri'],
      );
    }
    const dtype = input.dtype === 'int64' || input.dtype === 'int32' ? input.dtype : null;
    if (dtype === null) {
      throw new JobConfigError(`model.uri: input ${formatInput(input)}: token inputs must be int64 or int32`, ['model.uri']);
    }
    return { name, dtype };
  });
  const pre = job.preprocess;
  const image = pre ? (['size', 'range', 'mean', 'std', 'layout', 'channels'] as const).find((k) => pre[k] !== undefined) : undefined;
  if (image !== undefined)
    throw new JobConfigError(`preprocess.${image}: applies to images; a text model takes maxLength, prefix and chunk`, [`preprocess.${image}`]);
  const tokenizer =
    job.model.tokenizer !== undefined ? absoluteUri(job.model.tokenizer, cwd) : (defaults.tokenizer ?? join(dirname(modelUri), 'tokenizer.json'));
  const configFile = join(dirname(tokenizer), 'tokenizer_config.json');
  const tokenizerConfig = existsSync(configFile) ? configFile : undefined;
  const hash = createHash('sha256');
  const read = (file: string): Record<string, unknown> => {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new JobConfigError(`model.tokenizer: cannot read ${file}: ${(err as Error).message}`, ['model.tokenizer']);
    }
    hash.update(bytes);
    try {
      const v: unknown = JSON.parse(bytes.toString('utf8'));
      return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
    } catch (err) {
      throw new JobConfigError(`model.tokenizer: tokenizer ${file} is not a tokenizer file: ${(err as Error).message}`, ['model.tokenizer']);
    }
  };
  const json = read(tokenizer);
  const config = tokenizerConfig !== undefined ? read(tokenizerConfig) : {};
  // a placeholder such as 1e30 means the tokenizer sets no limit
  const fromConfig = typeof config['model_max_length'] === 'number' && config['model_max_length'] <= 1_000_000 ? config['model_max_length'] : undefined;
  const truncation = json['truncation'] as { max_length?: unknown } | null | undefined;
  const fromTokenizer = typeof truncation?.max_length === 'number' ? truncation.max_length : undefined;
  const positions = desc.tokenTables?.positions;
  const wanted = pre?.maxLength ?? defaults.maxLength ?? fromConfig ?? fromTokenizer ?? DEFAULTS.job.maxLength;
  if (pre?.maxLength !== undefined && positions !== undefined && pre.maxLength > positions) {
    throw new JobConfigError(`preprocess.maxLength: ${pre.maxLength} tokens, but the model's position table has ${positions}`, ['preprocess.maxLength']);
  }
  // a default longer than the model's position table is cut to it
  const maxLength = positions !== undefined ? Math.min(wanted, positions) : wanted;
  const chunk = resolveChunk(pre?.chunk, maxLength);
  const text: ResolvedText = {
    tokenizer,
    ...(tokenizerConfig !== undefined ? { tokenizerConfig } : {}),
    tokenizerHash: hash.digest('hex'),
    maxLength,
    prefix: pre?.prefix ?? '',
    inputs,
    ...(chunk ? { chunk } : {}),
  };
  // the tokenizer library is loaded by text jobs only
  const { TextTokenizer, TokenizerFileError } = await import('../preprocess/tokenize.js');
  let maxId: number;
  try {
    // a tokenizer that does not load fails the job here, before any work
    const tokenizer = new TextTokenizer(text);
    maxId = tokenizer.maxId();
    if (chunk) {
      const { TextChunker, ChunkSettingsError } = await import('../preprocess/chunk.js');
      try {
        new TextChunker(tokenizer, text.prefix, chunk);
      } catch (err) {
        if (err instanceof ChunkSettingsError) throw new JobConfigError(`preprocess.chunk.tokens: ${chunk.tokens} ${err.message}`, ['preprocess.chunk.tokens']);
        throw err;
      }
    }
  } catch (err) {
    if (err instanceof TokenizerFileError) throw new JobConfigError(`model.tokenizer: ${err.message}`, ['model.tokenizer']);
    throw err;
  }
  const vocabulary = desc.tokenTables?.vocabulary;
  if (vocabulary !== undefined && maxId >= vocabulary) {
    throw new JobConfigError(
      `model.tokenizer: tokenizer ${tokenizer} gives ids up to ${maxId}, but the model's embedding table (indexed by input_ids) has ${vocabulary} rows; is it the model's own tokenizer?`,
      ['model.tokenizer'],
    );
  }
  return text;
}

/** `preprocess.chunk` with its defaults decided: tokens (at most maxLength, which it defaults to) and overlap. */
function resolveChunk(chunk: ChunkConfig | undefined, maxLength: number): ResolvedChunk | undefined {
  if (!chunk) return undefined;
  const tokens = chunk.tokens ?? maxLength;
  if (tokens > maxLength) {
    throw new JobConfigError(
      `preprocess.chunk.tokens: ${tokens} tokens, but maxLength is ${maxLength}; a chunk is embedded in one forward pass of at most maxLength tokens (raise preprocess.maxLength if the model takes more)`,
      ['preprocess.chunk.tokens'],
    );
  }
  if (chunk.overlap >= tokens) {
    throw new JobConfigError(`preprocess.chunk.overlap: must be less than tokens (${tokens}), or no chunk would move past the one before it`, [
      'preprocess.chunk.overlap',
    ]);
  }
  return { tokens, overlap: chunk.overlap, ...(chunk.reduce ? { reduce: chunk.reduce } : {}) };
}

/** A job's text-only preprocess fields refused for a model fed images or tensors. */
export function checkNoTextFields(job: JobConfig): void {
  const pre = job.preprocess;
  const textField = pre?.maxLength !== undefined ? 'maxLength' : pre?.prefix !== undefined ? 'prefix' : pre?.chunk !== undefined ? 'chunk' : null;
  if (textField) throw new JobConfigError(`preprocess.${textField}: applies to text models (which take input_ids)`, [`preprocess.${textField}`]);
}

/**
 * `preprocess.chunk.reduce: mean` averages one vector per chunk: a tap that keeps every token (a
 * ragged column) is refused, named, before any work.
 */
export async function checkChunkMeanTaps(text: ResolvedText | undefined, modelUri: string, taps: ResolvedTap[], runtimes: RuntimeRegistry): Promise<void> {
  if (text?.chunk?.reduce !== 'mean') return;
  const columns = await modelTapColumns(modelUri, taps, true, runtimes);
  const ragged = columns.findIndex((c) => c?.layout === 'tokens');
  if (ragged >= 0) {
    throw new JobConfigError(
      `preprocess.chunk.reduce: mean averages one vector per chunk, but taps[${ragged}] (${taps[ragged]!.as}) keeps every token (reduce: none); pool it (reduce: mean, cls, ...) or write a row per chunk`,
      ['preprocess.chunk.reduce'],
    );
  }
}
