import { LayertapError } from '../types/errors.js';

/**
 * A table file whose structure is broken: a stored length, offset or row count that does not fit
 * the file, a cut-off footer, a piece that does not decode. Found at plan time it fails the job
 * before any work (the message names the file); found while a shard is read it fails that shard
 * without a retry, since every attempt would find the same damage (not retryable).
 */
export class DamagedTableError extends LayertapError {
  override readonly name = 'DamagedTableError';

  constructor(
    /** the table file, as the reader opened it */
    readonly file: string,
    /** what is wrong, without the file name */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    // retrying reads the same bytes again
    super(`${file}: ${oneLine(reason)}`, false, options);
  }
}

/** A message of a library (Rust panics, parser errors) as one short line, so it fits a log line and an errors file. */
export function oneLine(text: string, max = 300): string {
  const flat = text.replace(/\s*[\r\n]+\s*/g, '; ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

/** The message of anything thrown (parquet-wasm throws strings as well as Errors), as one line. */
export function describeThrown(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}
