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

/** Fields the worker's text lines carry: which run and shard a line is about. */
export interface WorkerLineFields {
  runId?: string;
  shard?: number;
  /** a BullMQ job id, when the line names a job rather than a run */
  jobId?: string;
  scheduleId?: string;
}

const RUN_SHARD = /\brun (\S+?) shard (\d+)\b/;
const RUN = /\brun (\S+?)(?=:|\s|$)/;
const SHARD_JOB = /\bshard job (\S+)/;
const SCHEDULE = /\bschedule (\S+) tick\b/;

/**
 * What a `LayertapWorker` log line is about, read from its text ('layertap worker: run <id> shard
 * <n>: ...'). The worker reports in text lines; reading the ids back keeps it free of any logger.
 */
export function workerLineFields(line: string): WorkerLineFields {
  const f: WorkerLineFields = {};
  const rs = RUN_SHARD.exec(line);
  if (rs) {
    f.runId = rs[1]!;
    f.shard = Number(rs[2]);
  } else {
    const r = RUN.exec(line);
    if (r) f.runId = r[1]!;
  }
  const j = SHARD_JOB.exec(line);
  if (j) {
    f.jobId = j[1]!;
    // shard job ids are '<runId>-<index>' (see LayertapClient.enqueue)
    const m = /^(.+)-(\d+)$/.exec(j[1]!);
    if (m && f.runId === undefined) {
      f.runId = m[1]!;
      f.shard = Number(m[2]);
    }
  }
  const s = SCHEDULE.exec(line);
  if (s) f.scheduleId = s[1]!;
  return f;
}

/** The level a worker line deserves, from its wording. */
export function workerLineLevel(line: string): 'info' | 'warn' | 'error' {
  if (/\bwarning:|\bstalled\b|\bhand(ed|ing) back\b|\bcould not\b|connection lost|\bagain:/i.test(line)) return 'warn';
  if (/\bfailed\b|\bpool: /.test(line)) return 'error';
  return 'info';
}

/**
 * A `log` function for `LayertapWorker` that writes each line as a structured record:
 * the text as `msg`, plus `runId` and `shard` when the line is about one.
 */
export function workerLog(logger: Logger): (line: string) => void {
  return (line) => {
    const level = workerLineLevel(line);
    logger[level](workerLineFields(line), line);
  };
}
