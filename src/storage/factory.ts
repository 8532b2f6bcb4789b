import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalSink } from './local-sink.js';
import { isS3Uri } from './s3-client.js';
import type { S3ConnectionOptions } from './s3-client.js';
import { S3Sink } from './s3-sink.js';
import type { Sink } from './types.js';

/** What a job file's `sink:` section says about where output goes (`format` is the part writer's business). */
export interface SinkSpec extends S3ConnectionOptions {
  uri: string;
}

/**
 * Creates the Sink for a job's `sink.uri` (or its whole `sink:` section): a local path or file://
 * URL, or `s3://bucket/prefix` (endpoint, region and path style from the spec or the AWS environment).
 */
export function createSink(spec: string | SinkSpec): Sink {
  const s: SinkSpec = typeof spec === 'string' ? { uri: spec } : spec;
  const uri = s.uri;
  // pick the connection fields: a job's sink section also carries `format`
  const options: S3ConnectionOptions = {
    ...(s.endpoint !== undefined ? { endpoint: s.endpoint } : {}),
    ...(s.region !== undefined ? { region: s.region } : {}),
    ...(s.forcePathStyle !== undefined ? { forcePathStyle: s.forcePathStyle } : {}),
  };
  if (uri.length === 0) throw new Error('sink.uri: empty; give a local directory such as ./out, or s3://bucket/prefix');
  if (isS3Uri(uri)) return new S3Sink(uri, options);
  const s3Field = Object.keys(options)[0];
  if (s3Field) throw new Error(`sink.${s3Field}: only applies to s3:// sinks, not ${uri}`);
  if (uri.startsWith('file://')) return new LocalSink(fileURLToPath(uri));
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1];
  if (scheme) {
    throw new Error(`sink.uri: unsupported scheme ${scheme}:// in ${uri}; use a local directory, a file:// URL or s3://bucket/prefix`);
  }
  return new LocalSink(path.resolve(uri));
}
