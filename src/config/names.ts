import { isAbsolute, resolve as resolvePath } from 'node:path';
import type { TapConfig } from './schema.js';

const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/** A job-file location made absolute against `cwd`; URIs with a scheme (s3://, builtin:) pass through. */
export function absoluteUri(uri: string, cwd: string = process.cwd()): string {
  if (uri.startsWith('file://')) return new URL(uri).pathname;
  // s3://, builtin: and other schemes are passed through; Windows drive letters are paths
  if (SCHEME.test(uri) && !/^[a-z]:[\\/]/i.test(uri)) return uri;
  return isAbsolute(uri) ? uri : resolvePath(cwd, uri);
}

/** Default column name: the layer name made SQL-friendly, with `_input` for input taps. */
export function defaultColumnName(tap: Pick<TapConfig, 'layer' | 'at'>): string {
  let base = tap.layer.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  if (base.length === 0 || /^[0-9]/.test(base)) base = `t_${base}`;
  return tap.at === 'input' ? `${base}_input` : base;
}
