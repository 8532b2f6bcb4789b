import type { ResolvedJob } from '../config/resolved.js';
import { backendMismatch, defaultRuntimes, runtimeFor, type RuntimeRegistry } from '../models/registry.js';
import { defaultFormats, type FormatRegistry } from '../sinks/formats.js';
import { defaultSources, type SourceRegistry } from '../sources/registry.js';
import { defaultSinks, sinkScheme, type SinkRegistry } from '../storage/registry.js';
import { UnknownNameError } from '../types/registry.js';

/**
 * What a job's names are looked up in: source kinds (`source.type`), sink schemes (the scheme of
 * `sink.uri`), part formats (`sink.format`) and model runtimes (by `model.uri`, and the backends
 * in `model.backend`). Planning, enqueueing and processing a job take one as an option.
 *
 * Pool threads cannot be handed functions: they import a runtime's module, which its entry names
 * (`RuntimeEntry.module`), so a runtime added here runs the job's batches too.
 *
 * @example
 * const registries = { ...defaultRegistries(), sinks: defaultSinks().with('mem', memorySink) };
 * await runJob(job, { registries });
 */
export interface Registries {
  sources: SourceRegistry;
  sinks: SinkRegistry;
  formats: FormatRegistry;
  runtimes: RuntimeRegistry;
}

/** The registries of everything layertap has built in. */
export function defaultRegistries(): Registries {
  return { sources: defaultSources(), sinks: defaultSinks(), formats: defaultFormats(), runtimes: defaultRuntimes() };
}

/**
 * What in a resolved job (job data from the queue, planned elsewhere) `registries` do not hold:
 * "source.type: unknown type 'x'; types are: ..." for a source type, sink scheme, part format or
 * backend they lack, or a backend that does not run the model; null when they hold it all.
 */
export function unknownNames(job: ResolvedJob, registries: Registries): string | null {
  try {
    registries.sources.get(job.source.type);
    registries.sinks.get(sinkScheme(job.sink.uri));
    registries.formats.get(job.sink.format);
    const mismatch = backendMismatch(job.model.uri, job.model.backend, runtimeFor(job.model.uri, registries.runtimes), registries.runtimes);
    return mismatch === null ? null : `model.backend: ${mismatch}`;
  } catch (err) {
    if (err instanceof UnknownNameError) return err.message;
    throw err;
  }
}
