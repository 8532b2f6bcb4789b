import { defaultRuntimes, type RuntimeRegistry } from '../models/registry.js';
import { defaultFormats, type FormatRegistry } from '../sinks/formats.js';
import { defaultSources, type SourceRegistry } from '../sources/registry.js';
import { defaultSinks, type SinkRegistry } from '../storage/registry.js';

/**
 * What a job's names are looked up in: source kinds (`source.type`), sink schemes (the scheme of
 * `sink.uri`), part formats (`sink.format`) and model runtimes (by `model.uri`, and the backends
 * in `model.backend`). Planning, enqueueing and processing a job take one as an option.
 *
 * Pool threads cannot be handed functions, so they always load models with the built-in
 * runtimes ({@link defaultRuntimes}); a runtime added here is used for planning only.
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
