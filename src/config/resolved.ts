import type { ExtraType } from '../types/columns.js';
import type { JobConfig, TapConfig } from './schema.js';

/** Preprocessing with every default filled in from the model's input. */
export interface ResolvedPreprocess {
  /** [height, width] */
  size: [number, number];
  fit: 'cover' | 'contain' | 'fill';
  layout: 'nhwc' | 'nchw';
  /** 1 (grayscale) or 3 (RGB) */
  channels: 1 | 3;
  /** per channel: value = (pixel / 255 - mean) / std; range [a, b] is mean = -a/(b-a), std = 1/(b-a) */
  mean: number[];
  std: number[];
}

/** How text rows become token ids: what a pool thread needs to tokenize. */
export interface ResolvedText {
  /** absolute path of the tokenizer.json */
  tokenizer: string;
  /** absolute path of tokenizer_config.json, when there is one beside the tokenizer */
  tokenizerConfig?: string;
  /** sha256 (hex) of the tokenizer file (and its config), part of the fingerprint */
  tokenizerHash: string;
  /** tokens per row, special tokens included */
  maxLength: number;
  /** put before every row ('' for none) */
  prefix: string;
  /** the model inputs to fill, by name, in the dtype the model declares */
  inputs: Array<{ name: 'input_ids' | 'attention_mask' | 'token_type_ids'; dtype: 'int32' | 'int64' }>;
  /** long documents: rows are cut into chunks embedded one by one; absent: rows are cut at maxLength */
  chunk?: ResolvedChunk;
}

/** How a text row is cut into chunks (README, "Long documents"). */
export interface ResolvedChunk {
  /** tokens per chunk, special tokens and prefix included (at most maxLength) */
  tokens: number;
  /** tokens (whole words) a chunk shares with the one before it */
  overlap: number;
  /** 'mean': one row per document instead of one per chunk */
  reduce?: 'mean';
}

/** A source column copied into the output beside `id`, with the type it is written as. */
export interface CarriedColumn {
  name: string;
  type: ExtraType;
  /** the column is the one embedded (a text job's text): a chunk row carries its chunk's own text in it */
  input?: true;
}

/** A model of the Hugging Face Hub, pinned to the commit planning found. */
export interface ResolvedHubModel {
  /** 'ORG/NAME' */
  repo: string;
  /** the revision the job named ('main' unless it names one) */
  revision: string;
  /** the commit it was at: part of the fingerprint */
  sha: string;
  /** the ONNX file's path in the repository */
  file: string;
}

/** A tap with its column name decided. */
export interface ResolvedTap extends TapConfig {
  as: string;
}

/**
 * A job after validation and inspection of its model and source: absolute locations, every
 * default decided, and the fingerprint. This is what travels in queue job data (plain JSON).
 */
export interface ResolvedJob {
  name: string;
  /** the job's `source:` fields that are set (idColumn/inputColumn for tables, endpoint/region/forcePathStyle for s3://), with its type decided */
  source: JobConfig['source'] & { type: string; text?: boolean };
  /**
   * uri: the model's local file (for an hf: model, in the Hub cache of the host that planned);
   * intraOpThreads: ONNX threads per forward pass, when the job sets it; hub: where an hf: model
   * came from, so that a host without it in its cache fetches the same commit
   */
  model: { uri: string; backend: string; format: string; intraOpThreads?: number; hub?: ResolvedHubModel };
  /** null for tensor sources (.npy), which feed the model as they are, and for text */
  preprocess: ResolvedPreprocess | null;
  /** text rows: how they are tokenized; absent for images and tensors */
  text?: ResolvedText;
  taps: ResolvedTap[];
  /** source columns copied beside `id` (`source.carry`, decided); absent or [] for none */
  carry?: CarriedColumn[];
  batchSize: number;
  shardSize: number;
  /**
   * for a table format (lancedb), `uri` is where its run folders go (`<tableUri>/<table>.layertap`),
   * `tableUri` the database the job named and `table` the table's name
   */
  sink: JobConfig['sink'] & { tableUri?: string };
  attempts: number;
  /** carry unchanged rows over from the latest committed run with this fingerprint */
  incremental: boolean;
  /** 'fail': a failed shard fails the run; 'partial': the run keeps its other shards */
  onShardFailure: 'fail' | 'partial';
  /** hash of model weights + topology + preprocess + taps (16 hex chars) */
  fingerprint: string;
  /** the per-row input shape the model takes, e.g. [224, 224, 3] */
  inputShape: number[];
}
