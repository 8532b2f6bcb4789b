/**
 * A problem with one field of a job (its path in `field`, e.g. 'source.uri'), found by the code
 * that uses the field: a source that cannot be opened, a sink that cannot be written. The plan
 * step turns it into a job error naming that field; the message starts with it.
 */
export class FieldError extends Error {
  override readonly name: string = 'FieldError';
  constructor(
    readonly field: string,
    /** what is wrong, without the field */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${field}: ${detail}`, options);
  }
}

/**
 * An error that says whether trying again can help. A shard that fails with one whose
 * `retryable` is false fails for good at once: every attempt, on any worker, would fail the same way.
 */
export class LayertapError extends Error {
  override readonly name: string = 'LayertapError';
  constructor(
    message: string,
    /** false: another attempt would meet the same fault (damaged input, a model that does not load, access denied) */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Storage that failed to answer: retryable for network faults, throttling and server errors, not for a missing bucket or denied access. */
export class StorageError extends LayertapError {
  override readonly name: string = 'StorageError';
}

/** The model could not be loaded (a missing or broken file, taps it does not have): no attempt will load it. */
export class ModelLoadError extends LayertapError {
  override readonly name: string = 'ModelLoadError';
  constructor(
    /** the model, as the job names it */
    readonly uri: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`model load failed: ${uri}: ${detail}`, false, options);
  }
}

/** True for an error that no retry can mend. */
export function isPermanent(err: unknown): boolean {
  return err instanceof LayertapError && !err.retryable;
}

/**
 * True when `err`, or an error it was caused by, is storage that failed to answer in a way that
 * may pass (network faults, throttling, server errors): an outage of the store, not a fault of
 * the shard or the job.
 */
export function isStorageOutage(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof StorageError) return e.retryable;
  }
  return false;
}
