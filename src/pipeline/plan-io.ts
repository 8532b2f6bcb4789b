import { JobConfigError } from '../config/errors.js';
import type { JobConfig } from '../config/schema.js';
import type { FormatRegistry } from '../sinks/formats.js';
import { createSource, inferSourceType, type SourceRegistry, type SourceSpec } from '../sources/registry.js';
import type { Source } from '../sources/types.js';
import { createSink, type SinkRegistry } from '../storage/registry.js';
import { FieldError, LayertapError } from '../types/errors.js';

// Where a job reads and writes, as planning checks them: the sink, the source's kind, the source.

/** The fields of a job section that are set: what travels in the resolved job. */
export function setFields<T extends object>(section: T): T {
  return Object.fromEntries(Object.entries(section).filter(([, v]) => v !== undefined)) as T;
}

/**
 * A source/sink error as a JobConfigError naming its field (a FieldError's own), else `field`; a
 * store that does not answer (a retryable error) stays what it is: the job may be right.
 */
export function configError(err: unknown, field: string): Error {
  if (err instanceof JobConfigError) return err;
  if (err instanceof LayertapError && err.retryable) return err;
  if (err instanceof FieldError) return new JobConfigError(err.message, [err.field]);
  return new JobConfigError(`${field}: ${err instanceof Error ? err.message : String(err)}`, [field]);
}

/** The sink a job writes to, checked before any work: its part format is known, and its store answers and takes a probe write. */
export async function planSink(job: JobConfig, sinkUri: string, sinks: SinkRegistry, formats: FormatRegistry): Promise<JobConfig['sink']> {
  // an unknown format, a missing bucket or an unwritable sink fails here, before any work
  const sink = { ...setFields(job.sink), uri: sinkUri };
  try {
    formats.get(sink.format);
    await (await createSink(sink, sinks)).check(job.name);
  } catch (err) {
    throw configError(err, 'sink.uri');
  }
  return sink;
}

/** The job's source kind (`source.type`, else the one its uri names), and whether it reads rows from a table. */
export function sourceKind(job: JobConfig, sourceUri: string, sources: SourceRegistry): { type: string; isTable: boolean } {
  let type: string;
  try {
    type = job.source.type ?? inferSourceType(sourceUri, sources);
    sources.get(type);
  } catch (err) {
    throw configError(err, 'source.uri');
  }
  // a kind that takes an input column reads its rows from a table
  return { type, isTable: sources.get(type).fields.includes('inputColumn') };
}

/** The source `spec` names, opened and checked (it exists, it can be read); the caller closes it. */
export async function openSource(spec: SourceSpec, sources: SourceRegistry): Promise<Source> {
  let source: Source | undefined;
  try {
    source = await createSource(spec, sources);
    await source.check();
    return source;
  } catch (err) {
    await source?.close();
    throw configError(err, 'source.uri');
  }
}
