import { JobConfigError } from '../config/errors.js';
import type { ResolvedJob } from '../config/resolved.js';
import { TABLE_NAME, type JobConfig } from '../config/schema.js';
import { defaultFormats, type FormatRegistry } from '../sinks/formats.js';
import { createSource, inferSourceType, type SourceRegistry, type SourceSpec } from '../sources/registry.js';
import type { Source } from '../sources/types.js';
import { createSink, type SinkRegistry } from '../storage/registry.js';
import { FieldError, LayertapError } from '../types/errors.js';
import { tableSpecOf } from './table-commit.js';

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

/**
 * The sink a job writes to, checked before any work: its part format is known, and its store
 * answers and takes a probe write. For a format that writes a table (lancedb), `uri` becomes the
 * location of its run folders beside the table (`<uri>/<table>.layertap`), `tableUri` keeps the
 * database the job named, and `table` defaults to the job's name; the database is opened once.
 */
export async function planSink(job: JobConfig, sinkUri: string, sinks: SinkRegistry, formats: FormatRegistry): Promise<ResolvedJob['sink']> {
  // an unknown format, a missing bucket or an unwritable sink fails here, before any work
  let sink: ResolvedJob['sink'] = { ...setFields(job.sink), uri: sinkUri };
  try {
    const format = formats.get(sink.format);
    const takes: readonly string[] = format.table?.fields ?? [];
    for (const field of ['table', 'index'] as const) {
      if (sink[field] === undefined || takes.includes(field)) continue;
      const takers = formats.list().filter(([, e]) => (e.table?.fields as readonly string[] | undefined)?.includes(field));
      throw new FieldError(`sink.${field}`, `only applies to ${takers.map(([n]) => `format ${n}`).join(' or ') || 'no format'}, not ${sink.format}`);
    }
    if (format.table) {
      const table = sink.table ?? job.name;
      if (!TABLE_NAME.test(table)) {
        throw new FieldError('sink.table', `the job's name '${job.name}' is not a table name (letters, digits, '_', '-', '.'); set sink.table`);
      }
      const spec = tableSpecOf({ ...sink, table, tableUri: sinkUri })!;
      await format.table.check(spec);
      sink = { ...sink, table, tableUri: sinkUri, uri: format.table.runsUri(spec) };
    }
    await (await createSink(sink, sinks)).check(job.name);
  } catch (err) {
    throw configError(err, 'sink.uri');
  }
  return sink;
}

/**
 * Where a job's run folders are, for code that starts from a job file (not a resolved job):
 * `sink.uri`, or for a format that writes a table, `<uri>/<table>.layertap` beside the table.
 */
export function runsLocation(job: Pick<JobConfig, 'name' | 'sink'>, formats: FormatRegistry = defaultFormats()): string {
  const table = formats.find(job.sink.format)?.table;
  return table ? table.runsUri({ uri: job.sink.uri, table: job.sink.table ?? job.name }) : job.sink.uri;
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
