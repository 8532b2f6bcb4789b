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

/** Options of {@link repeatLimitedLogger}. */
export interface RepeatLimitOptions {
  /** how long the same warning or error is said once. @defaultValue 5000 */
  windowMs?: number;
  /** the clock. @defaultValue Date.now */
  now?: () => number;
}

/**
 * A Logger that says each warning and error once per `windowMs`: the same message again within
 * the window is counted, not written, and the next one written after it says how many were left
 * out (`(repeated 41 times in the last 5 s)`). A fault that repeats in a loop, such as every
 * command refused by a Redis that is out of memory, then costs a line every few seconds instead
 * of filling a disk. Info and debug records pass as they are.
 */
export function repeatLimitedLogger(inner: Logger, opts: RepeatLimitOptions = {}): Logger {
  const windowMs = opts.windowMs ?? 5000;
  const now = opts.now ?? Date.now;
  // shared by every child: the same message is the same, whatever it is bound to
  const seen = new Map<string, { at: number; skipped: number }>();
  const wrap = (log: Logger): Logger => {
    const limited =
      (level: 'warn' | 'error') =>
      (fields: LogFields, msg: string): void => {
        const key = `${level}\n${msg}`;
        const t = now();
        const s = seen.get(key);
        if (s && t - s.at < windowMs) {
          s.skipped++;
          return;
        }
        const skipped = s?.skipped ?? 0;
        seen.set(key, { at: t, skipped: 0 });
        if (seen.size > 1000) seen.delete(seen.keys().next().value as string);
        log[level](
          skipped > 0 ? { ...fields, repeated: skipped } : fields,
          skipped > 0 ? `${msg} (repeated ${skipped} times in the last ${Math.round(windowMs / 1000)} s)` : msg,
        );
      };
    return {
      debug: (f, m) => log.debug(f, m),
      info: (f, m) => log.info(f, m),
      warn: limited('warn'),
      error: limited('error'),
      child: (b) => wrap(log.child(b)),
    };
  };
  return wrap(inner);
}
