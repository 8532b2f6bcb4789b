import { z } from 'zod';
import { countSchema, describeIssues, pathSegmentSchema } from '../config/index.js';
import type { RunManifest } from './manifest.js';

/** The fields of `_manifest.json` that a run's record is made from. */
export type ManifestRecordFields = Pick<
  RunManifest,
  | 'runId'
  | 'name'
  | 'fingerprint'
  | 'status'
  | 'model'
  | 'trigger'
  | 'rows'
  | 'errorRows'
  | 'files'
  | 'errorFiles'
  | 'shards'
  | 'shardCount'
  | 'plannedShards'
  | 'failedShards'
  | 'createdAt'
  | 'committedAt'
  | 'finishedAt'
  | 'seconds'
>;

const isoTime = z.iso.datetime({ offset: true });

/**
 * `_manifest.json` as far as anything outside the run folder relies on it: the registry rebuilt
 * from manifests, and the pages and tools that show it. A manifest is a file in a bucket that
 * others may write to, so these fields must have their types; fields not named here are kept as
 * they are.
 */
export const manifestSchema = z.looseObject({
  layertap: z.string().optional(),
  runId: pathSegmentSchema,
  name: pathSegmentSchema,
  fingerprint: pathSegmentSchema,
  status: z.enum(['committed', 'partial', 'failed', 'cancelled']),
  model: z.looseObject({ uri: z.string(), format: z.string(), backend: z.string(), runtime: z.string().nullable() }),
  trigger: z.enum(['manual', 'schedule']).optional(),
  rows: countSchema,
  errorRows: countSchema,
  files: z.array(z.string()).optional(),
  errorFiles: z.array(z.string()).optional(),
  shards: z.array(
    z.looseObject({
      index: countSchema,
      rows: countSchema,
      errorRows: countSchema,
      file: z.string().nullable(),
      errorsFile: z.string().nullable(),
      bytes: countSchema,
      seconds: z.number(),
    }),
  ),
  shardCount: countSchema.optional(),
  plannedShards: countSchema.optional(),
  failedShards: z.array(z.looseObject({ index: countSchema, error: z.string() })),
  createdAt: isoTime,
  committedAt: isoTime.optional(),
  finishedAt: isoTime.optional(),
  // clocks of the enqueuing and finalizing hosts may differ: no sign is promised
  seconds: z.number(),
}) satisfies z.ZodType<ManifestRecordFields>;

/** The text of a `_manifest.json`, checked: the manifest, or the reason it is not one (naming the fields). */
export function parseManifest(text: string): { manifest: ManifestRecordFields } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { problem: `not JSON (${(err as Error).message})` };
  }
  const r = manifestSchema.safeParse(value, { reportInput: true });
  return r.success ? { manifest: r.data } : { problem: describeIssues(r.error) };
}
