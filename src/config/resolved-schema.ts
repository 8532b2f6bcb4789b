import { z } from 'zod';
import type { CarriedColumn, ResolvedChunk, ResolvedHubModel, ResolvedJob, ResolvedPreprocess, ResolvedTap, ResolvedText } from './resolved.js';
import { datasetNameSchema, REDUCE_MODES, s3Fields, sourceLimitFields, tableSinkFields } from './schema.js';

// source types, backends and sink formats are registry names: the worker that takes a job checks
// them against its registries (a name it does not hold fails the job), as planning did
const registryName = z.string().min(1);

/**
 * Compile-time check that a schema names every key of a type, optional ones included: a field
 * added to the type and not to its strict schema would otherwise be refused at run time.
 * Use as `true satisfies SameKeys<Type, z.output<typeof schema>>`.
 */
export type SameKeys<A, B> = [Exclude<KnownKeys<A>, KnownKeys<B>> | Exclude<KnownKeys<B>, KnownKeys<A>>] extends [never] ? true : false;

/** Named keys, without index signatures (a loose schema's output has one). */
type KnownKeys<T> = keyof { [K in keyof T as string extends K ? never : number extends K ? never : symbol extends K ? never : K]: T[K] };

/** A count or index: an integer >= 0. */
export const countSchema = z.number().int().nonnegative();

/** A name used as one folder of a path (run id, fingerprint): nothing that climbs or nests. */
export const pathSegmentSchema = z
  .string()
  .min(1)
  .max(255)
  .refine(
    // control characters are what a hostile name would smuggle into logs and paths
    // eslint-disable-next-line no-control-regex
    (v) => !/[/\\\u0000-\u001f\u007f]/.test(v) && v !== '.' && v !== '..',
    "must be one path segment (no '/', '\\' or control characters; not '.' or '..')",
  );

const S3_URI = /^s3:\/\//i;

/** endpoint, region and forcePathStyle mean something only for s3:// locations (as the source and sink factories say). */
function s3Only(what: 'source' | 'sink') {
  return (v: { uri: string; endpoint?: string | undefined; region?: string | undefined; forcePathStyle?: boolean | undefined }, ctx: z.RefinementCtx) => {
    if (S3_URI.test(v.uri)) return;
    for (const k of ['endpoint', 'region', 'forcePathStyle'] as const) {
      if (v[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `only applies to s3:// ${what}s` });
    }
  };
}

export const resolvedPreprocessSchema = z.strictObject({
  size: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  fit: z.enum(['cover', 'contain', 'fill']),
  layout: z.enum(['nhwc', 'nchw']),
  channels: z.union([z.literal(1), z.literal(3)]),
  mean: z.array(z.number()).min(1),
  std: z.array(z.number()).min(1),
}) satisfies z.ZodType<ResolvedPreprocess>;

export const resolvedTapSchema = z.strictObject({
  layer: z.string().min(1),
  at: z.enum(['input', 'output']),
  as: z.string().min(1),
  reduce: z.enum(REDUCE_MODES),
  axes: z.array(z.number().int().min(1)).min(1).optional(),
  normalize: z.enum(['none', 'l2']),
  dtype: z.enum(['float32', 'float16']),
}) satisfies z.ZodType<ResolvedTap>;

const resolvedSourceSchema = z
  .strictObject({
    uri: z.string().min(1),
    type: registryName,
    extensions: z.array(z.string().min(1)).min(1).optional(),
    idColumn: z.string().min(1).optional(),
    inputColumn: z.string().min(1).optional(),
    carry: z.array(z.string().min(1)).optional(),
    text: z.boolean().optional(),
    ...sourceLimitFields,
    ...s3Fields,
  })
  .superRefine(s3Only('source'));

const resolvedChunkSchema = z
  .strictObject({
    tokens: z.number().int().positive(),
    overlap: countSchema,
    reduce: z.literal('mean').optional(),
  })
  .refine((c) => c.overlap < c.tokens, 'overlap must be less than tokens') satisfies z.ZodType<ResolvedChunk>;

const carriedColumnSchema = z.strictObject({
  name: z.string().min(1),
  type: z.enum(['utf8', 'int32', 'int64', 'float64', 'bool']),
  input: z.literal(true).optional(),
}) satisfies z.ZodType<CarriedColumn>;

export const resolvedTextSchema = z.strictObject({
  tokenizer: z.string().min(1),
  tokenizerConfig: z.string().min(1).optional(),
  tokenizerHash: z.string().min(1),
  maxLength: z.number().int().positive(),
  prefix: z.string(),
  inputs: z.array(z.strictObject({ name: z.enum(['input_ids', 'attention_mask', 'token_type_ids']), dtype: z.enum(['int32', 'int64']) })).min(1),
  chunk: resolvedChunkSchema.optional(),
}) satisfies z.ZodType<ResolvedText>;

const resolvedHubSchema = z.strictObject({
  repo: z.string().regex(/^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/),
  revision: z.string().min(1),
  sha: z.string().regex(/^[0-9a-f]{40}$/),
  // a path inside the repository: no '..', not absolute
  file: z
    .string()
    .min(1)
    .refine((f) => !f.startsWith('/') && f.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), 'must be a path inside the repository'),
}) satisfies z.ZodType<ResolvedHubModel>;

const resolvedModelSchema = z.strictObject({
  uri: z.string().min(1),
  backend: registryName,
  format: z.string().min(1),
  intraOpThreads: z.number().int().positive().max(1024).optional(),
  hub: resolvedHubSchema.optional(),
});

const resolvedSinkSchema = z
  .strictObject({
    uri: z.string().min(1),
    format: registryName,
    ...tableSinkFields,
    tableUri: z.string().min(1).optional(),
    ...s3Fields,
  })
  .superRefine(s3Only('sink'));

/**
 * A {@link ResolvedJob} as it travels in queue job data: every field present and of its type,
 * and nothing else. Workers check job data against it before they act on it, since anyone who
 * can write to Redis can put a job on the queue.
 */
export const resolvedJobSchema = z.strictObject({
  name: datasetNameSchema,
  source: resolvedSourceSchema,
  model: resolvedModelSchema,
  preprocess: resolvedPreprocessSchema.nullable(),
  text: resolvedTextSchema.optional(),
  taps: z.array(resolvedTapSchema).min(1),
  carry: z.array(carriedColumnSchema).optional(),
  batchSize: z.number().int().positive().max(65536),
  shardSize: z.number().int().positive(),
  sink: resolvedSinkSchema,
  attempts: z.number().int().positive().max(100),
  incremental: z.boolean(),
  onShardFailure: z.enum(['fail', 'partial']),
  fingerprint: pathSegmentSchema,
  inputShape: z.array(countSchema),
}) satisfies z.ZodType<ResolvedJob>;

true satisfies SameKeys<ResolvedJob, z.output<typeof resolvedJobSchema>>;
true satisfies SameKeys<ResolvedJob['source'], z.output<typeof resolvedSourceSchema>>;
true satisfies SameKeys<ResolvedJob['model'], z.output<typeof resolvedModelSchema>>;
true satisfies SameKeys<ResolvedJob['sink'], z.output<typeof resolvedSinkSchema>>;
true satisfies SameKeys<ResolvedPreprocess, z.output<typeof resolvedPreprocessSchema>>;
true satisfies SameKeys<ResolvedTap, z.output<typeof resolvedTapSchema>>;
true satisfies SameKeys<ResolvedText, z.output<typeof resolvedTextSchema>>;
true satisfies SameKeys<ResolvedChunk, z.output<typeof resolvedChunkSchema>>;
true satisfies SameKeys<CarriedColumn, z.output<typeof carriedColumnSchema>>;
true satisfies SameKeys<ResolvedHubModel, z.output<typeof resolvedHubSchema>>;
