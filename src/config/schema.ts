import { z } from 'zod';
import { DEFAULTS } from './defaults.js';

/**
 * Source types, sink formats and model backends are names from the registries of the code that
 * runs the job (sources, part formats, runtimes): the schema takes any name, and planning a job
 * checks it against them, with the names they hold in the error.
 */
const registryName = z.string().min(1);

/** A source type: a name of a source registry ('images', 'npy', 'arrow', 'parquet', 'jsonl' are built in). */
export type SourceType = string;
/** A part format: a name of a format registry ('arrow' and 'parquet' are built in). */
export type SinkFormat = string;
/** A model backend: 'auto', or a backend of a runtime ('tensorflow', 'wasm', 'cpu' for TF.js models; 'onnx'). */
export type BackendName = string;

/** Connection to an S3-compatible store (s3:// uris only); unset fields come from the AWS environment. */
export const s3Fields = {
  /** e.g. http://127.0.0.1:9000 for MinIO. @defaultValue AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, else AWS */
  endpoint: z
    .string()
    .regex(/^https?:\/\/[^\s/]+/, 'must be an http:// or https:// URL')
    .optional(),
  /** @defaultValue AWS_REGION, then AWS_DEFAULT_REGION, else us-east-1 */
  region: z.string().min(1).optional(),
  /** path-style requests (http://host/bucket/key). @defaultValue true when an endpoint is set */
  forcePathStyle: z.boolean().optional(),
};

const positiveInt = z.number().int().positive();

/** A LanceDB table name: letters, digits, '_', '-' and '.', not starting with '.'. */
export const TABLE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

/** `sink:` fields of formats that write a table (lancedb); the format's registry entry says which it takes. */
export const tableSinkFields = {
  /** the table's name. @defaultValue the job's `name` */
  table: z.string().regex(TABLE_NAME, "must be letters, digits, '_', '-' or '.' (not starting with '.')").max(255).optional(),
  /** a vector index built on each tap column after every commit. @defaultValue none */
  index: z
    .strictObject({
      /** ivf_pq or hnsw_sq */
      type: z.enum(['ivf_pq', 'hnsw_sq']),
      /** @defaultValue cosine */
      metric: z.enum(['cosine', 'l2', 'dot']).default('cosine'),
    })
    .optional(),
};

/** The `sink:` fields that belong to its format rather than to the storage of its uri. */
export const SINK_FORMAT_FIELDS = ['format', 'table', 'index', 'tableUri'] as const;

/** A size limit in bytes, at most `max` (`why` says why). */
function byteCount(max: number, why: string) {
  return z
    .number()
    .positive('must be a positive number of bytes')
    .max(max, `at most ${max} (${why})`)
    .refine(Number.isInteger, 'must be a whole number of bytes');
}

/** How much of a source one row may take; the job file's and the resolved job's `source:` share them. */
export const sourceLimitFields = {
  /** JSONL: longest line read as a row; a longer one is an error row. @defaultValue 67108864 (64 MiB) */
  maxLineBytes: byteCount(512 * 1024 * 1024, '512 MiB; a longer line cannot be decoded as text').optional(),
  /** images and image-path columns: largest file or object read for one row; a larger one is an error row. @defaultValue 268435456 (256 MiB) */
  maxRowBytes: byteCount(4 * 1024 * 1024 * 1024, '4 GiB').optional(),
};

/**
 * Long documents: a text row becomes one row per chunk of at most `tokens` tokens (special tokens
 * and the prefix included), cut between words; consecutive chunks share up to `overlap` tokens.
 */
export const chunkSchema = z
  .strictObject({
    /** tokens per chunk, special tokens and the prefix included; at most maxLength. @defaultValue maxLength */
    tokens: positiveInt.max(1_000_000).optional(),
    /** tokens (whole words) a chunk shares with the one before it. @defaultValue 0 */
    overlap: z.number().int().nonnegative().default(0),
    /** mean: one row per document, the token-weighted mean of its chunks' features, then the tap's normalize. @defaultValue none: a row per chunk */
    reduce: z.enum(['mean']).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.tokens !== undefined && c.overlap >= c.tokens) {
      ctx.addIssue({ code: 'custom', path: ['overlap'], message: `must be less than tokens (${c.tokens}), or no chunk would move past the one before it` });
    }
  });

/** Image preprocessing: decode, resize to `size`, scale pixels, lay out as the model expects. */
export const preprocessSchema = z.strictObject({
  /** [height, width]. @defaultValue the model's input size */
  size: z.tuple([positiveInt, positiveInt]).optional(),
  /** cover: resize shorter side and centre-crop; contain: letterbox; fill: stretch. @defaultValue cover */
  fit: z.enum(['cover', 'contain', 'fill']).default(DEFAULTS.job.fit),
  /** @defaultValue what the model's input expects (nhwc for TF.js) */
  layout: z.enum(['nhwc', 'nchw']).optional(),
  /** pixels scaled linearly from [0,255] to this range. @defaultValue [0, 1] unless mean/std are given */
  range: z.tuple([z.number(), z.number()]).optional(),
  /** per-channel mean on the 0-1 scale (as torchvision's Normalize) */
  mean: z.array(z.number()).min(1).optional(),
  /** per-channel std on the 0-1 scale */
  std: z.array(z.number().positive()).min(1).optional(),
  /** colour channels fed to the model. @defaultValue the model's input channels (3 or 1) */
  channels: z.union([z.literal(1), z.literal(3)]).optional(),
  /**
   * text: tokens per row, special tokens included; longer rows are cut. @defaultValue
   * tokenizer_config.json model_max_length, else the tokenizer's truncation, else 512
   */
  maxLength: positiveInt.max(1_000_000).optional(),
  /** text: put before every row (instruction-style models, e.g. 'passage: '). @defaultValue none */
  prefix: z.string().optional(),
  /** text: cut rows longer than `tokens` into chunks, each embedded as its own text (see README, "Long documents"). @defaultValue no chunking */
  chunk: chunkSchema.optional(),
});

/**
 * The `reduce` modes, declared once for the job file and the resolved job: what each does to an
 * activation, the column it leaves and which taps it fits are in models/reductions.ts, whose
 * table has an entry per name here.
 */
export const REDUCE_MODES = ['none', 'mean', 'max', 'cls', 'last', 'mean_sqrt_len'] as const;
/**
 * A `reduce` mode: none (keep every value), mean or max (pool), cls or last (pick a token of a
 * text model), mean_sqrt_len (the sum divided by the square root of the count: sentence-transformers'
 * pooling_mode_mean_sqrt_len_tokens).
 */
export type ReduceMode = (typeof REDUCE_MODES)[number];

export const tapSchema = z.strictObject({
  /** layer name (LayersModel), node name (GraphModel), module path (ONNX), or a glob of them (`*`: any run of characters but '.' and '/') */
  layer: z.string().min(1),
  /** as in hook(module, input, output). @defaultValue output */
  at: z.enum(['input', 'output']).default(DEFAULTS.job.tap.at),
  /** output column name; on a glob it must contain {name}, the matched layer's default column name. @defaultValue derived from layer and at */
  as: z
    .string()
    // {name} stands for each layer a glob matches
    .regex(/^(?:[A-Za-z_]|\{name\})(?:[A-Za-z0-9_.:-]|\{name\})*$/, 'must start with a letter or _ and use letters, digits, _ . : - (and {name} on a glob)')
    .optional(),
  /** pooling over spatial/sequence axes: none | mean | max | mean_sqrt_len (text: also cls | last); flatten is implied. @defaultValue none */
  reduce: z.enum(REDUCE_MODES).default(DEFAULTS.job.tap.reduce),
  /**
   * the axes `reduce` pools over, counted in the activation with the batch axis as 0, consecutive
   * and ascending: [1] for a transformer's [N, tokens, D] output. @defaultValue the spatial axes of
   * the layout (between batch and channels for nhwc, after the channels for nchw)
   */
  axes: z.array(z.number().int().min(1, 'axis 0 is the batch axis; pool over axes 1 and up')).min(1).optional(),
  /** @defaultValue none */
  normalize: z.enum(['none', 'l2']).default(DEFAULTS.job.tap.normalize),
  /** @defaultValue float32 */
  dtype: z.enum(['float32', 'float16']).default(DEFAULTS.job.tap.dtype),
});

/** A dataset name: it becomes a folder name in the output path. */
export const datasetNameSchema = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, _ . - (it becomes a folder name)');

export const jobSchema = z.strictObject({
  /** dataset name: part of the output path */
  name: datasetNameSchema,
  source: z.strictObject({
    uri: z.string().min(1),
    /** images | npy | arrow | parquet | jsonl, or a kind a source registry adds. @defaultValue inferred from the uri */
    type: registryName.optional(),
    /** image file extensions to include (images sources). @defaultValue common image types */
    extensions: z.array(z.string().min(1)).min(1).optional(),
    /** tables: the row id column. @defaultValue 'id' if the table has it, else the row index */
    idColumn: z.string().min(1).optional(),
    /** tables: the column to embed (list of numbers, image bytes, or image path). @defaultValue the only other column */
    inputColumn: z.string().min(1).optional(),
    /**
     * table and text sources: columns copied into the output beside `id` (text, numbers and
     * booleans). `[]` carries none. @defaultValue the text column for a text job, else none
     */
    carry: z.array(z.string().min(1)).optional(),
    ...sourceLimitFields,
    ...s3Fields,
  }),
  model: z.strictObject({
    /** model.json (TF.js LayersModel or GraphModel), .onnx, builtin:<name>, or hf:ORG/NAME[@REVISION] (a Hugging Face Hub repository with an ONNX file) */
    uri: z.string().min(1),
    /** hf: models: the ONNX file in the repository, e.g. onnx/model_quantized.onnx. @defaultValue onnx/model.onnx, else model.onnx */
    file: z.string().min(1).optional(),
    /** text models: a Hugging Face tokenizer.json. @defaultValue tokenizer.json beside the model */
    tokenizer: z.string().min(1).optional(),
    /**
     * auto | tensorflow (tfjs-node) | wasm | cpu (TF.js models) | onnx (.onnx models); `auto` runs
     * .onnx files on onnx and TF.js models on tensorflow if it loads, else wasm, else cpu. @defaultValue auto
     */
    backend: registryName.default(DEFAULTS.job.backend),
    /**
     * ONNX: threads one forward pass may use (onnxruntime's intra-op threads), per pool thread.
     * @defaultValue cores / pool threads, at least 1, so that pool threads x intra-op threads = cores
     */
    intraOpThreads: positiveInt.max(1024).optional(),
  }),
  preprocess: preprocessSchema.optional(),
  /**
   * the layers to tap. @defaultValue none: required, except for a sentence-transformers model
   * from the Hub, whose sentence embedding is tapped as column `embedding` (its own taps come after it)
   */
  taps: z.array(tapSchema).min(1, 'name at least one layer to tap').optional(),
  /** rows per forward pass. @defaultValue 32 */
  batchSize: positiveInt.max(65536).default(DEFAULTS.job.batchSize),
  /** rows per shard job and per output part file. @defaultValue 1024 */
  shardSize: positiveInt.default(DEFAULTS.job.shardSize),
  sink: z.strictObject({
    uri: z.string().min(1),
    /** arrow (IPC file), parquet, or lancedb (rows into a LanceDB table at `uri`). @defaultValue arrow */
    format: registryName.default(DEFAULTS.job.format),
    ...tableSinkFields,
    ...s3Fields,
  }),
  /**
   * embed only rows whose content is not in the latest committed run of this dataset and
   * fingerprint, carrying the other vectors over. @defaultValue false (true for scheduled runs)
   */
  incremental: z.boolean().optional(),
  /** attempts per shard before it counts as failed. @defaultValue 3 */
  attempts: positiveInt.max(100).default(DEFAULTS.job.attempts),
  /**
   * what a shard that fails every attempt does to the run: `fail` (the run is failed, no
   * `_SUCCESS`) or `partial` (the other shards are kept, the run is marked `_PARTIAL`). @defaultValue fail
   */
  onShardFailure: z.enum(['fail', 'partial']).default(DEFAULTS.job.onShardFailure),
});

/** A job file as written by a user (defaults not yet applied). */
export type JobInput = z.input<typeof jobSchema>;
/** A job file after validation, with schema defaults applied. */
export type JobConfig = z.output<typeof jobSchema>;
export type TapConfig = z.output<typeof tapSchema>;
export type PreprocessConfig = z.output<typeof preprocessSchema>;
export type ChunkConfig = z.output<typeof chunkSchema>;
