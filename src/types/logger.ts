/** How much a log record matters. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Facts a log record carries beside its message: which worker, run and shard it is about, counts, times. */
export type LogFields = Record<string, unknown>;

/**
 * The logging the library does: a message plus fields, at a level, through loggers bound to
 * what the work is about (`log.child({ runId, shard })`). A pino logger is one (`ops/logger.ts`
 * makes it); {@link callbackLogger} makes one from a function.
 */
export interface Logger {
  debug(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  error(fields: LogFields, msg: string): void;
  /** a logger whose records all carry `bindings` */
  child(bindings: LogFields): Logger;
}

/**
 * A Logger that hands each record to `write`, with the fields of every `child()` it came from
 * merged into the record's own.
 *
 * @example
 * ```ts
 * const log = callbackLogger((msg, level, fields) => console.error(level, msg, fields.runId));
 * log.child({ runId: 'r1' }).warn({ shard: 2 }, 'handed back'); // warn handed back r1
 * ```
 */
export function callbackLogger(write: (msg: string, level: LogLevel, fields: LogFields) => void, bindings: LogFields = {}): Logger {
  const at =
    (level: LogLevel) =>
    (fields: LogFields, msg: string): void =>
      write(msg, level, { ...bindings, ...fields });
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => callbackLogger(write, { ...bindings, ...more }),
  };
}

/** A Logger that drops everything. */
export const silentLogger: Logger = callbackLogger(() => undefined);
