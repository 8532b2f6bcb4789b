import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { DEFAULTS } from '../../config/defaults.js';
import type { RunEstimate } from '../../queue/plan-estimate.js';
import { examples, fail, out, table, type SetExit } from '../common.js';

/** Option parser: a positive number (rows per second may be fractional). */
function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

/** Option parser: a comma-separated list of positive integers. */
function intList(name: string) {
  return (v: string): number[] => {
    const ns = v.split(',').map(Number);
    if (ns.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`${name} must be positive integers separated by commas, like 1,4,16`);
    return ns;
  };
}

/** Bytes as B, KB, MB, GB, TB (powers of 1000, as disks are sold). */
function humanBytes(n: number | null): string {
  if (n === null) return '?';
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

function humanSeconds(s: number): string {
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} days`;
}

/** Bytes of the id and the other columns besides the taps, null when one is unknown. */
function others(e: RunEstimate): number | null {
  return e.columns.every((c) => c.bytes !== null) ? e.columns.reduce((a, c) => a + (c.bytes ?? 0), 0) : null;
}

/** Bytes per row, to the byte (a ragged column's are an average). */
function perRow(n: number | null): string {
  return n === null ? '?' : String(Math.round(n));
}

function print(e: RunEstimate): void {
  const lines = [
    `plan ${e.name} (${e.fingerprint}) over ${e.source}`,
    `  rows        ${e.rows}${e.outputRows !== e.rows ? `, written as about ${e.outputRows} chunk rows (${e.rowsFrom})` : ''}`,
    `  shards      ${e.shards} of ${e.shardSize} rows${e.planFiles ? `; ${e.planFiles} plan file(s) under _plan/` : ''}`,
    `  output      ${humanBytes(e.totalBytes)}: ${humanBytes(e.bytes)} of features (shapes from ${e.shapesFrom}), ${humanBytes(others(e))} of id and other columns`,
    table(
      ['    column', 'shape', 'layout', 'B/row', 'bytes'],
      [
        ...e.columns.map((c) => [`    ${c.name}`, c.type, '', perRow(c.bytesPerRow), humanBytes(c.bytes)]),
        ...e.taps.map((t) => [`    ${t.as}`, t.shape ? JSON.stringify(t.shape) : '?', t.layout ?? '?', perRow(t.bytesPerRow), humanBytes(t.bytes)]),
      ],
    ),
  ];
  if (e.tokensPerRow !== null && e.taps.some((t) => t.layout === 'tokens'))
    lines.push(`  tokens      ${e.tokensPerRow.toFixed(1)} per row (${e.tokensFrom}), for the token columns`);
  else if (e.taps.some((t) => t.layout === 'tokens')) lines.push('  tokens      unknown: the source gave no text to sample');
  lines.push(`  redis       ${humanBytes(e.redis.atEnqueue)} at enqueue, up to ${humanBytes(e.redis.peak)} while it runs`);
  if (e.rowsPerSec === null) lines.push('  duration    unknown: give --rows-per-sec, or commit a run of this fingerprint first');
  else {
    lines.push(`  duration    at ${e.rowsPerSec.toFixed(1)} rows/s per worker (${e.rowsPerSecFrom}); a shard is one worker's`);
    lines.push(
      table(
        ['    workers', 'busy', 'time'],
        e.duration.map((d) => [`    ${d.workers}`, String(d.busy), humanSeconds(d.seconds)]),
      ),
    );
  }
  out(lines.join('\n'));
}

/** `layertap plan <job-file>`: size a run without queueing it. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('plan <job-file>')
    .description('size a run without queueing it (no Redis): rows, shards, output bytes per tap, Redis memory, duration per worker count')
    .addHelpText('after', examples('layertap plan config/examples/demo.yaml --rows-per-sec 30 --workers 1,4,16'))
    .option(
      '--rows-per-sec <n>',
      'throughput of one worker (default: that of the newest committed run of the same fingerprint)',
      positiveNumber('--rows-per-sec'),
    )
    .option('--workers <list>', `worker counts to estimate the duration for (default ${DEFAULTS.plan.workerCounts.join(',')})`, intList('--workers'))
    .option('--json', 'print one JSON object on stdout')
    .action(async (file: string, o: { rowsPerSec?: number; workers?: number[]; json?: boolean }) => {
      try {
        const [{ loadJobFile }, { resolveJob }, { estimateRun }] = await Promise.all([
          import('../../config/load.js'),
          import('../../pipeline/plan.js'),
          import('../../queue/plan-estimate.js'),
        ]);
        const job = await resolveJob(await loadJobFile(file));
        const e = await estimateRun(job, { ...(o.rowsPerSec ? { rowsPerSec: o.rowsPerSec } : {}), ...(o.workers ? { workers: o.workers } : {}) });
        if (o.json) out(JSON.stringify(e));
        else print(e);
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
}
