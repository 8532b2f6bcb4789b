/** A job file that cannot run as written. Raised before any work; never retried. */
export class JobConfigError extends Error {
  override readonly name = 'JobConfigError';
  constructor(
    message: string,
    /** field paths at fault, e.g. ['taps[0].layer'] */
    readonly fields: string[] = [],
  ) {
    super(message);
  }
}
