import type { SingleBar } from 'cli-progress';
import type { RunSummary } from '../queue/types.js';
import { lostShardLine } from './common.js';

type CliProgress = typeof import('cli-progress');

/** A progress display on stderr: a bar on a terminal, a line every few seconds otherwise. */
export class ProgressDisplay {
  private bar: SingleBar | null = null;
  private lastLine = 0;
  /** lost shards already reported, so each is said once */
  private readonly lostSaid = new Set<string>();
  /** the storage outage already reported (its start) */
  private outageSaid = 0;
  private readonly started = Date.now();

  private constructor(
    private readonly enabled: boolean,
    /** the bar's module, on a terminal only */
    private readonly bars: CliProgress | null,
  ) {}

  /** A display (`enabled`: shown at all); the bar's module is loaded only when stderr is a terminal. */
  static async open(enabled: boolean): Promise<ProgressDisplay> {
    return new ProgressDisplay(enabled, enabled && process.stderr.isTTY ? (await import('cli-progress')).default : null);
  }

  update(s: RunSummary): void {
    if (!this.enabled) return;
    for (const l of s.lostShards ?? []) {
      const key = `${l.index} ${l.worker}`;
      if (this.lostSaid.has(key)) continue;
      this.lostSaid.add(key);
      process.stderr.write(`${this.bar ? '\n' : ''}waiting: ${lostShardLine(l)}\n`);
    }
    if (s.storageOutage && s.storageOutage.since !== this.outageSaid) {
      this.outageSaid = s.storageOutage.since;
      process.stderr.write(`${this.bar ? '\n' : ''}waiting for storage since ${new Date(s.storageOutage.since).toISOString()}: ${s.storageOutage.error}\n`);
    }
    // committed shards, and what shards in progress have written so far
    const done = s.rows + s.errorRows + (s.active ? s.active.rows + s.active.errorRows : 0);
    const elapsed = (Date.now() - this.started) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    if (this.bars) {
      if (!this.bar) {
        this.bar = new this.bars.SingleBar(
          {
            stream: process.stderr,
            format: '{bar} {percentage}% | {value}/{total} rows | {errors} errors | shards {shards} | {rate} rows/s | eta {eta_formatted}',
            hideCursor: true,
            clearOnComplete: false,
          },
          this.bars.Presets.shades_classic,
        );
        this.bar.start(s.totalRows, 0, { errors: 0, shards: '0/0', rate: '0' });
      }
      this.bar.update(Math.min(done, s.totalRows), {
        errors: s.errorRows,
        shards: `${s.shards.done}/${s.shards.total}`,
        rate: rate.toFixed(1),
      });
    } else if (Date.now() - this.lastLine > 5000 || s.status === 'committed' || s.status === 'failed') {
      this.lastLine = Date.now();
      process.stderr.write(
        `progress: ${done}/${s.totalRows} rows (${s.errorRows} errors), shards ${s.shards.done}/${s.shards.total}, ${rate.toFixed(1)} rows/s, ${s.status}\n`,
      );
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
