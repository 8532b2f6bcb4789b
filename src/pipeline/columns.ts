import type { ResolvedJob } from '../config/resolved.js';
import { CHUNK_COLUMNS, type ExtraColumn } from '../types/columns.js';

/**
 * The columns a job writes between `id` and its taps: the carried source columns, then for a
 * chunked text job that writes a row per chunk, `chunk`, `start` and `end`.
 */
export function extraColumns(job: ResolvedJob): ExtraColumn[] {
  const out: ExtraColumn[] = (job.carry ?? []).map((c) => ({ name: c.name, type: c.type, kind: 'carry' }));
  if (chunkRows(job)) for (const name of CHUNK_COLUMNS) out.push({ name, type: 'int32', kind: 'chunk' });
  return out;
}

/** The job writes one row per chunk of each document (chunking without `reduce`). */
export function chunkRows(job: ResolvedJob): boolean {
  return job.text?.chunk !== undefined && job.text.chunk.reduce === undefined;
}
