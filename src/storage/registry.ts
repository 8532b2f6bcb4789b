import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SINK_FORMAT_FIELDS, type JobConfig } from '../config/schema.js';
import { Registry } from '../types/registry.js';
import { S3_CONNECTION_FIELDS, s3Connection } from './s3-client.js';
import type { Sink } from './types.js';
import { FieldError } from '../types/errors.js';

/** What a job file's `sink:` section says about where output goes (`format` is the part writer's business). */
export type SinkSpec = Omit<JobConfig['sink'], 'format'> & { tableUri?: string };

/** Fields of `sink:` that only some schemes take. */
export type SinkField = Exclude<keyof SinkSpec, 'uri' | (typeof SINK_FORMAT_FIELDS)[number]>;

/** One kind of storage for output, by uri scheme. Its module is imported by `open`. */
export interface SinkEntry {
  /** what a uri of it looks like, for messages: 's3://bucket/prefix' */
  describe: string;
  /** the scheme's own job fields (connection settings) */
  fields: readonly SinkField[];
  /** the sink for a spec whose fields were checked */
  open(spec: SinkSpec): Promise<Sink>;
}

/** Sink kinds by uri scheme; 'file' also takes plain paths. */
export type SinkRegistry = Registry<SinkEntry>;

/** The storage layertap has built in: local (or mounted) folders and S3-compatible object stores. */
export function defaultSinks(): SinkRegistry {
  return new Registry<SinkEntry>('sink.uri', 'scheme', {
    file: {
      describe: 'a local directory or a file:// URL',
      fields: [],
      async open(spec) {
        const { LocalSink } = await import('./local-sink.js');
        return new LocalSink(spec.uri.startsWith('file://') ? fileURLToPath(spec.uri) : path.resolve(spec.uri));
      },
    },
    s3: {
      describe: 's3://bucket/prefix',
      fields: S3_CONNECTION_FIELDS,
      async open(spec) {
        const { S3Sink } = await import('./s3-sink.js');
        return new S3Sink(spec.uri, s3Connection(spec));
      },
    },
  });
}

/** The scheme of a sink uri, by which its registry entry is found: 'file' for a plain path. */
export function sinkScheme(uri: string): string {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1]?.toLowerCase() ?? 'file';
}

/**
 * Opens the Sink for a job's `sink.uri` (or its whole `sink:` section) by the uri's scheme: a
 * plain path is a local one. Fails on a scheme `sinks` does not hold and on fields the scheme
 * does not take; only that scheme's module is loaded.
 */
export async function createSink(spec: string | SinkSpec, sinks: SinkRegistry = defaultSinks()): Promise<Sink> {
  const s: SinkSpec = typeof spec === 'string' ? { uri: spec } : spec;
  const uri = s.uri;
  const schemes = sinks.list();
  if (uri.length === 0) throw new FieldError('sink.uri', `empty; give ${schemes.map(([, e]) => e.describe).join(', or ')}`);
  const scheme = sinkScheme(uri);
  const entry = sinks.find(scheme);
  if (entry === undefined) {
    throw new FieldError('sink.uri', `unsupported scheme ${scheme}:// in ${uri}; use ${schemes.map(([, e]) => e.describe).join(', or ')}`);
  }
  for (const [field, value] of Object.entries(s)) {
    if (
      value === undefined ||
      field === 'uri' ||
      (SINK_FORMAT_FIELDS as readonly string[]).includes(field) ||
      (entry.fields as readonly string[]).includes(field)
    )
      continue;
    const takers = schemes.filter(([, e]) => (e.fields as readonly string[]).includes(field)).map(([name]) => `${name}://`);
    throw new FieldError(`sink.${field}`, `only applies to ${takers.join(', ') || 'no'} sinks, not ${uri}`);
  }
  return entry.open(s);
}
