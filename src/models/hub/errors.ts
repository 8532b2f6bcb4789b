import { LayertapError } from '../../types/errors.js';

/** What went wrong reaching a model on the Hub; `kind` steers the message and the exit code, not its text. */
export type HubErrorKind =
  /** no such repository (or one the token cannot see) */
  | 'repository'
  /** the repository has no such branch, tag or commit */
  | 'revision'
  /** a file the job needs is not in the repository */
  | 'file'
  /** the Hub wants a token, or refused the one given */
  | 'auth'
  /** HF_HUB_OFFLINE is set and the cache lacks what the job needs */
  | 'offline'
  /** the Hub did not answer, or answered with a server error: another try may work */
  | 'unavailable'
  /** a download that does not match what the Hub said it is (size, hash) */
  | 'damaged';

/**
 * A model on the Hub that cannot be had. Retryable only for `unavailable` and `damaged` (a
 * dropped connection, a server error); the others are facts about the job's model id.
 */
export class HubError extends LayertapError {
  override readonly name: string = 'HubError';
  constructor(
    readonly kind: HubErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, kind === 'unavailable' || kind === 'damaged', options);
  }
}
