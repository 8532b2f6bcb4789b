import { InvalidArgumentError } from 'commander';
import { JobConfigError } from '../config/errors.js';
import type { LayertapClient } from '../queue/client.js';
import { settingsFromEnv } from '../queue/connection.js';
import type { RunSummary } from '../queue/types.js';

// Commands load what they run (BullMQ, the model runtimes, sharp, the dashboard) in their action,
// so that `layertap <command>` pays only for its own modules.

/** Exit codes: 0 done, 1 the work failed, 2 bad input (job file, arguments, model), 3 partial run (some shards failed, the rest committed). */
export const EXIT = { ok: 0, failed: 1, usage: 2, partial: 3 } as const;

/** How a command reports its exit code to `main`, which exits once the command has finished. */
export type SetExit = (code: number) => void;

/**
 * The examples shown at the end of a command's help (`.addHelpText('after', examples(...))`), as
 * git and docker show theirs: one command line each.
 */
export function examples(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;
}

/** Help text of `--allow-eviction`, shared by the commands that write to the queue. */
export const ALLOW_EVICTION_HELP = 'use a Redis whose maxmemory-policy is not noeviction (it may lose jobs); also LAYERTAP_ALLOW_EVICTION=1';

/** Option parser: an integer >= 1; the error names the option. */
export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

/** Option parser: an integer >= 0; the error names the option. */
export function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

/** Option parser: a TCP port, 0 included; the error names the option. */
export function portNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`${name} must be a port number (0-65535; 0 picks a free one)`);
    return n;
  };
}

/** One line on stderr. */
export const err = (line: string) => process.stderr.write(`${line}\n`);
/** Text on stdout, ending in exactly one newline of its own. */
export const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** Print the error (and with `json`, a JSON error object on stdout); returns the exit code it calls for. */
export function fail(e: unknown, json: boolean): number {
  const message = e instanceof Error ? e.message : String(e);
  if (json) out(JSON.stringify({ error: message, ...(e instanceof JobConfigError ? { fields: e.fields } : {}) }));
  err(`layertap: ${message}`);
  return e instanceof JobConfigError ? EXIT.usage : EXIT.failed;
}

/** Connect to the deployment's Redis (REDIS_URL), run `fn`, close. */
export async function withClient<T>(fn: (client: LayertapClient) => Promise<T>, opts: { writes?: boolean } = {}): Promise<T> {
  const [{ checkRedis }, { LayertapClient }] = await Promise.all([import('../queue/redis-checks.js'), import('../queue/client.js')]);
  const settings = settingsFromEnv();
  // commands that only read are not refused over the eviction policy; ones that add schedules are
  const check = await checkRedis(settings.redisUrl, opts.writes ? {} : { allowEviction: true });
  for (const w of check.warnings) err(`layertap: warning: ${w}`);
  const client = new LayertapClient(settings);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Left-aligned text columns. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(w[i]!))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

/** The human-readable summary of a run, as `run` and `status` print it. */
export function printSummary(s: RunSummary): void {
  const lines = [
    `run ${s.runId}: ${s.status}`,
    s.documents !== undefined
      ? `  rows        ${s.documents} embedded as ${s.rows} rows (chunks), ${s.errorRows} error rows, of ${s.totalRows}`
      : `  rows        ${s.rows} embedded, ${s.errorRows} error rows, of ${s.totalRows}`,
    `  shards      ${s.shards.done} done, ${s.shards.failed} failed, ${s.shards.cancelled ? `${s.shards.cancelled} cancelled, ` : ''}of ${s.shards.total}`,
    `  fingerprint ${s.fingerprint}`,
    `  backend     ${s.backend ?? '-'}`,
    `  time        ${s.seconds.toFixed(2)} s${s.rowsPerSecond ? ` (${s.rowsPerSecond.toFixed(1)} rows/s)` : ''}`,
    `  output      ${s.output.uri}`,
  ];
  if (s.output.manifest) lines.push(`  manifest    ${s.output.manifest}`);
  for (const f of s.output.files.slice(0, 5)) lines.push(`  part        ${f}`);
  if (s.output.files.length > 5) lines.push(`  ...         ${s.output.files.length - 5} more part files`);
  for (const f of s.output.errorFiles.slice(0, 5)) lines.push(`  errors      ${f}`);
  if (s.error) lines.push(`  error       ${s.error}`);
  for (const l of s.lostShards ?? []) lines.push(`  waiting     ${lostShardLine(l)}`);
  if (s.storageOutage) lines.push(`  waiting     for storage since ${new Date(s.storageOutage.since).toISOString()}: ${s.storageOutage.error}`);
  if (s.active && s.active.rows + s.active.errorRows > 0)
    lines.push(`  in progress ${s.active.rows} rows, ${s.active.errorRows} error rows in shards not yet committed`);
  out(lines.join('\n'));
}

/** What a run waits for when a shard's worker is gone (`status`, and `run`'s progress). */
export function lostShardLine(l: { index: number; worker: string }): string {
  return `shard ${l.index}: its worker ${l.worker} is gone; the shard is retried once its lock expires (worker --lock-ms, 30 s by default) and a stalled check finds it`;
}
