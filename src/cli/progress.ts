import type { SingleBar } from 'cli-progress';
import type { RunSummary } from '../queue/types.js';
import { lostShardLine } from './common.js';

type CliProgress = typeof import('cli-progress');

/** Where the display writes: stderr, or a stand-in with the same shape in tests. */
export type ProgressStream = Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean };

/** Options of {@link ProgressDisplay.open}. */
export interface ProgressOptions {
  /** @defaultValue process.stderr */
  stream?: ProgressStream;
  /** the clock, in milliseconds. @defaultValue Date.now */
  now?: () => number;
}

/** A duration as the bar shows it: 45s, 3m05s, 2h07m. */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Rows per second and time left, measured from when the plan was known (not from when planning began). */
export interface ProgressFigures {
  rate: number;
  /** seconds left at that rate; null until a row is done after the plan was known */
  eta: number | null;
}

/**
 * A progress display on stderr: `planning` until the run's plan is known (its shards counted),
 * then a bar on a terminal or a line every few seconds otherwise, with an ETA from the rows done
 * since then.
 */
export class ProgressDisplay {
  private bar: SingleBar | null = null;
  /** when the last line was written, off a terminal */
  private lastLine: number | null = null;
  /** lost shards already reported, so each is said once */
  private readonly lostSaid = new Set<string>();
  /** the storage outage already reported (its start) */
  private outageSaid = 0;
  /** when the plan was known, and the rows already done then (a run joined midway) */
  private planned: { at: number; done: number } | null = null;
  private readonly stream: ProgressStream;
  private readonly now: () => number;

  private constructor(
    private readonly enabled: boolean,
    /** the bar's module, on a terminal only */
    private readonly bars: CliProgress | null,
    opts: ProgressOptions,
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.now = opts.now ?? Date.now;
    // the job is resolved and the source listed before the first summary: say so at once
    if (enabled) this.stream.write('planning: checking the job, the model and the sink, then listing the source into shards\n');
  }

  /** A display (`enabled`: shown at all); the bar's module is loaded only when the stream is a terminal. */
  static async open(enabled: boolean, opts: ProgressOptions = {}): Promise<ProgressDisplay> {
    const tty = (opts.stream ?? process.stderr).isTTY === true;
    return new ProgressDisplay(enabled, enabled && tty ? (await import('cli-progress')).default : null, opts);
  }

  /** The rate and ETA of `s` at this moment. */
  figures(s: RunSummary): ProgressFigures {
    const done = rowsDone(s);
    if (this.planned === null) return { rate: 0, eta: null };
    const seconds = (this.now() - this.planned.at) / 1000;
    const since = done - this.planned.done;
    const rate = seconds > 0 ? since / seconds : 0;
    if (s.status === 'committed' || s.totalRows === done) return { rate, eta: 0 };
    return { rate, eta: since > 0 && rate > 0 ? (s.totalRows - done) / rate : null };
  }

  update(s: RunSummary): void {
    if (!this.enabled) return;
    for (const l of s.lostShards ?? []) {
      const key = `${l.index} ${l.worker}`;
      if (this.lostSaid.has(key)) continue;
      this.lostSaid.add(key);
      this.stream.write(`${this.bar ? '\n' : ''}waiting: ${lostShardLine(l)}\n`);
    }
    if (s.storageOutage && s.storageOutage.since !== this.outageSaid) {
      this.outageSaid = s.storageOutage.since;
      this.stream.write(`${this.bar ? '\n' : ''}waiting for storage since ${new Date(s.storageOutage.since).toISOString()}: ${s.storageOutage.error}\n`);
    }
    // a run still planning (one joined while its enqueuer lists the source) has no shards to count yet
    if (s.status === 'planning') return;
    const done = rowsDone(s);
    this.planned ??= { at: this.now(), done };
    const { rate, eta } = this.figures(s);
    const etaText = eta === null ? 'estimating' : formatEta(eta);
    if (this.bars) {
      if (!this.bar) {
        this.bar = new this.bars.SingleBar(
          {
            stream: this.stream as NodeJS.WritableStream,
            format: '{bar} {percentage}% | {value}/{total} rows | {errors} errors | shards {shards} | {rate} rows/s | eta {etaText}',
            hideCursor: true,
            clearOnComplete: false,
          },
          this.bars.Presets.shades_classic,
        );
        this.bar.start(s.totalRows, 0, { errors: 0, shards: `0/${s.shards.total}`, rate: '0', etaText });
      }
      this.bar.update(Math.min(done, s.totalRows), {
        errors: s.errorRows,
        shards: `${s.shards.done}/${s.shards.total}`,
        rate: rate.toFixed(1),
        etaText,
      });
    } else if (this.lastLine === null || this.now() - this.lastLine > 5000 || s.status === 'committed' || s.status === 'failed') {
      this.lastLine = this.now();
      this.stream.write(
        `progress: ${done}/${s.totalRows} rows (${s.errorRows} errors), shards ${s.shards.done}/${s.shards.total}, ${rate.toFixed(1)} rows/s, eta ${etaText}, ${s.status}\n`,
      );
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

/** Rows done: those of committed shards, and what shards in progress have written so far. */
function rowsDone(s: RunSummary): number {
  return s.rows + s.errorRows + (s.active ? s.active.rows + s.active.errorRows : 0);
}
