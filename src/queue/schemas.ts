import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { countSchema, describeIssues, pathSegmentSchema, resolvedJobSchema, type SameKeys } from '../config/index.js';
import type { ShardSpec } from '../sources/types.js';
import type { BaseRun } from '../pipeline/incremental.js';
import { unknownNames, type Registries } from '../pipeline/registries.js';
import type { ResolvedJob } from '../config/resolved.js';
import type { RunJobData, RunRecord, RunSpec, RunStatus, ShardTask } from './types.js';

/** A key under the sink: relative, and never above the sink's root. */
const sinkKeySchema = z
  .string()
  .min(1)
  .refine((k) => !k.startsWith('/') && !k.split('/').includes('..'), "must be a key inside the sink (no leading '/', no '..')");

export const shardSpecSchema = z.strictObject({
  index: countSchema,
  start: countSchema,
  count: countSchema,
  ids: z.array(z.string()).optional(),
  offset: countSchema.optional(),
}) satisfies z.ZodType<ShardSpec>;

export const baseRunSchema = z.strictObject({
  runId: pathSegmentSchema,
  parts: z.array(z.strictObject({ part: sinkKeySchema, index: sinkKeySchema })),
  shapes: z.record(z.string(), z.array(countSchema)),
  layout: z.enum(['nhwc', 'nchw']),
  runtime: z.string(),
}) satisfies z.ZodType<BaseRun>;

/** What a shard job carries (see {@link ShardTask}), and nothing else. */
export const shardTaskSchema = z.strictObject({
  runId: pathSegmentSchema,
  index: countSchema,
  start: countSchema,
  count: countSchema,
  offset: countSchema.optional(),
}) satisfies z.ZodType<ShardTask>;

/** What a run's spec holds (see {@link RunSpec}), and nothing else. */
export const runSpecSchema = z.strictObject({
  runId: pathSegmentSchema,
  job: resolvedJobSchema,
  createdAt: z.number().nonnegative(),
  trigger: z.enum(['manual', 'schedule']),
  shards: countSchema,
  totalRows: countSchema,
  window: countSchema.min(1),
  idPlan: z.boolean(),
  baseRunId: pathSegmentSchema.nullable(),
  base: baseRunSchema.optional(),
  owner: pathSegmentSchema.optional(),
}) satisfies z.ZodType<RunSpec>;

/** What a run (parent) job carries (see {@link RunJobData}), and nothing else. */
export const runJobDataSchema = z.strictObject({
  runId: pathSegmentSchema,
}) satisfies z.ZodType<RunJobData>;

/** Every run status, spelled out so that a status added to the type must be added here. */
const RUN_STATUSES: { [S in RunStatus]: S } = {
  planning: 'planning',
  queued: 'queued',
  running: 'running',
  cancelling: 'cancelling',
  committed: 'committed',
  failed: 'failed',
  partial: 'partial',
  cancelled: 'cancelled',
};

/**
 * A run record as the registry keeps it. Fields it does not know are kept (a newer version may
 * add some); the ones it knows must have their types, since pages and tools show them.
 */
export const runRecordSchema = z.looseObject({
  runId: pathSegmentSchema,
  name: pathSegmentSchema,
  fingerprint: pathSegmentSchema,
  status: z.enum(RUN_STATUSES),
  trigger: z.enum(['manual', 'schedule']),
  createdAt: z.number().nonnegative(),
  finishedAt: z.number().nonnegative().optional(),
  shards: countSchema,
  totalRows: countSchema,
  rows: countSchema,
  errorRows: countSchema,
  documents: countSchema.optional(),
  duplicateIds: z
    .object({ count: countSchema, examples: z.array(z.string()) })
    .nullable()
    .optional(),
  failedShards: z.array(countSchema),
  outputUri: z.string(),
  manifest: z.string().optional(),
  files: z.array(z.string()).optional(),
  errorFiles: z.array(z.string()).optional(),
  backend: z.string().optional(),
  error: z.string().optional(),
  deduplicated: z.boolean().optional(),
  doneShards: countSchema.optional(),
  cancelledShards: countSchema.optional(),
  owner: pathSegmentSchema.optional(),
  unfinalized: z.boolean().optional(),
}) satisfies z.ZodType<RunRecord>;

true satisfies SameKeys<ShardSpec, z.output<typeof shardSpecSchema>>;
true satisfies SameKeys<BaseRun, z.output<typeof baseRunSchema>>;
true satisfies SameKeys<ShardTask, z.output<typeof shardTaskSchema>>;
true satisfies SameKeys<RunSpec, z.output<typeof runSpecSchema>>;
true satisfies SameKeys<RunJobData, z.output<typeof runJobDataSchema>>;
true satisfies SameKeys<RunRecord, z.output<typeof runRecordSchema>>;

/** Job data that does not have the shape its queue's jobs have. */
export class InvalidJobDataError extends Error {
  override readonly name = 'InvalidJobDataError';
  constructor(
    /** which queue's job */
    readonly kind: 'shard' | 'run' | 'run spec' | 'schedule tick',
    /** one line naming each field at fault */
    readonly problem: string,
  ) {
    super(kind === 'run spec' ? `invalid run spec: ${problem}` : `invalid ${kind} job data: ${problem}`);
  }
}

// reportInput: so that a value of the wrong type is told apart from a missing one in the message

/** The data of a shard job, checked; throws {@link InvalidJobDataError} naming the fields at fault. */
export function parseShardTask(data: unknown): ShardTask {
  const r = shardTaskSchema.safeParse(data, { reportInput: true });
  if (!r.success) throw new InvalidJobDataError('shard', describeIssues(r.error));
  return r.data;
}

/** A run's stored spec, checked; throws {@link InvalidJobDataError} naming the fields at fault. */
export function parseRunSpec(data: unknown): RunSpec {
  const r = runSpecSchema.safeParse(data, { reportInput: true });
  if (!r.success) throw new InvalidJobDataError('run spec', describeIssues(r.error));
  return r.data;
}

/** The data of a run job, checked; throws {@link InvalidJobDataError} naming the fields at fault. */
export function parseRunJobData(data: unknown): RunJobData {
  const r = runJobDataSchema.safeParse(data, { reportInput: true });
  if (!r.success) throw new InvalidJobDataError('run', describeIssues(r.error));
  return r.data;
}

/**
 * `data` when the registries hold the source type, sink scheme, part format and backend its job
 * names, else an {@link InvalidJobDataError} naming the field: a worker acts only on kinds it has.
 */
export function withKnownNames<T extends { job: ResolvedJob }>(kind: 'shard' | 'run' | 'run spec', data: T, registries: Registries): T {
  const problem = unknownNames(data.job, registries);
  if (problem !== null) throw new InvalidJobDataError(kind, `job.${problem}`);
  return data;
}

/**
 * Job data checked by `parse`, or an UnrecoverableError with its message: data that is malformed
 * now is malformed on every attempt, so BullMQ fails the job at once instead of retrying it.
 */
export function checkedJobData<T>(data: unknown, parse: (data: unknown) => T): T {
  try {
    return parse(data);
  } catch (err) {
    if (err instanceof InvalidJobDataError) throw new UnrecoverableError(err.message);
    throw err;
  }
}
