import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalSink } from './local-sink.js';
import type { Sink } from './types.js';

/** Creates the Sink for a job's `sink.uri`: a local path or file:// URL (s3:// is not supported yet). */
export function createSink(uri: string): Sink {
  if (uri.length === 0) throw new Error('sink.uri: empty; give a local directory such as ./out');
  if (uri.startsWith('file://')) return new LocalSink(fileURLToPath(uri));
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1];
  if (scheme?.toLowerCase() === 's3') {
    throw new Error(`sink.uri: s3:// sinks are not supported yet (${uri}); use a local directory for now`);
  }
  if (scheme) {
    throw new Error(`sink.uri: unsupported scheme ${scheme}:// in ${uri}; use a local directory or file:// URL`);
  }
  return new LocalSink(path.resolve(uri));
}
