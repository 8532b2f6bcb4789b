import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

export type { Logger };

/** How log lines are written: one JSON object per line, or coloured text for a person at a terminal. */
export type LogFormat = 'json' | 'pretty';

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** @defaultValue LAYERTAP_LOG_FORMAT, else 'pretty' when stderr is a terminal and 'json' otherwise */
  format?: LogFormat;
  /** lowest level written. @defaultValue LAYERTAP_LOG_LEVEL ?? 'info' */
  level?: string;
  /** fields on every line, e.g. `{ worker: 'host:pid' }` */
  bindings?: Record<string, unknown>;
  /** where lines go (tests). @defaultValue stderr, written synchronously */
  destination?: { write(line: string): unknown };
}

/** The format `createLogger` picks when none is given. */
export function defaultLogFormat(env: NodeJS.ProcessEnv = process.env, isTTY = !!process.stderr.isTTY): LogFormat {
  const f = env.LAYERTAP_LOG_FORMAT;
  if (f === 'json' || f === 'pretty') return f;
  if (f !== undefined && f !== '') throw new Error(`LAYERTAP_LOG_FORMAT must be json or pretty, got '${f}'`);
  return isTTY ? 'pretty' : 'json';
}

/**
 * A pino logger writing to stderr (stdout belongs to `--json` output). Lines are written
 * synchronously: the CLI ends with process.exit, which would drop buffered lines.
 *
 * @example
 * ```ts
 * const log = createLogger({ bindings: { worker: 'host-a:4242' } });
 * log.info({ runId: '20261127T061502-3fa9c1', shard: 3 }, 'shard committed');
 * // {"level":"info","time":"2026-11-27T06:15:09.120Z","worker":"host-a:4242","runId":"...","shard":3,"msg":"shard committed"}
 * ```
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const format = opts.format ?? defaultLogFormat();
  const custom = opts.destination;
  let destination: DestinationStream;
  if (format === 'pretty') {
    const write = custom ? (s: string) => void custom.write(s) : (s: string) => void process.stderr.write(s);
    destination = prettyStream(write, !custom && !!process.stderr.isTTY);
  } else {
    destination = custom ? { write: (s: string) => void custom.write(s) } : pino.destination({ dest: 2, sync: true });
  }
  return pino(
    {
      level: opts.level ?? process.env.LAYERTAP_LOG_LEVEL ?? 'info',
      // JSON lines carry level labels, not numbers: readable in any log store without a lookup table
      ...(format === 'json' ? { formatters: { level: (label: string) => ({ level: label }) } } : {}),
      timestamp: pino.stdTimeFunctions.isoTime,
      base: { pid: process.pid, ...(opts.bindings ?? {}) },
    },
    destination,
  );
}

/** Formats each JSON line for a person, synchronously (pino-pretty's stream form buffers). */
function prettyStream(write: (s: string) => void, colorize: boolean): DestinationStream {
  const format = prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
  return { write: (line: string) => write(format(JSON.parse(line) as object)) };
}
