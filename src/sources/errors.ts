import { UnrecoverableError } from 'bullmq';

/**
 * A table file whose structure is broken: a stored length, offset or row count that does not fit
 * the file, a cut-off footer, a piece that does not decode. Found at plan time it fails the job
 * before any work (the message names the file); found while a shard is read it fails that shard
 * without a retry, since every attempt would find the same damage (hence UnrecoverableError,
 * which BullMQ does not retry).
 */
export class DamagedTableError extends UnrecoverableError {
  override readonly name = 'DamagedTableError';
  /** retrying reads the same bytes again */
  readonly retryable = false;

  constructor(
    /** the table file, as the reader opened it */
    readonly file: string,
    /** what is wrong, without the file name */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${oneLine(reason)}`);
    if (options?.cause !== undefined) this.cause = options.cause;
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
