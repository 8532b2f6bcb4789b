import type { Queue } from 'bullmq';
import type { LayertapClient } from '../../queue/client.js';
import type { RunStatus } from '../../queue/types.js';

/** One row of the runs page (and of `GET /api/runs`). */
export interface RunView {
  runId: string;
  name: string;
  status: RunStatus;
  trigger: 'manual' | 'schedule';
  rows: number;
  totalRows: number;
  errorRows: number;
  shards: { total: number; done: number; failed: number };
  /** rows per second from enqueue to the end (or to now while the run is active); null before any row */
  rowsPerSecond: number | null;
  seconds: number;
  createdAt: number;
  finishedAt: number | null;
  backend: string | null;
  fingerprint: string;
  output: { uri: string; manifest: string | null };
  error: string | null;
}

/** Options for {@link listRuns}. */
export interface ListRunsOptions {
  /** newest N runs. @defaultValue 50 */
  limit?: number;
  /** only runs of this dataset name */
  name?: string;
}

/** The newest runs from the registry, with live progress for the active ones. */
export async function listRuns(client: LayertapClient, opts: ListRunsOptions = {}): Promise<RunView[]> {
  const limit = opts.limit ?? 50;
  const records = (await client.registry.list(opts.name ? 10_000 : limit)).filter((r) => !opts.name || r.name === opts.name).slice(0, limit);
  const views: RunView[] = [];
  for (const rec of records) {
    // status() reads live counters for queued/running runs and the record for finished ones
    const s = await client.status(rec.runId);
    if (!s) continue;
    views.push({
      runId: s.runId,
      name: s.name,
      status: s.status,
      trigger: rec.trigger,
      rows: s.rows,
      totalRows: s.totalRows,
      errorRows: s.errorRows,
      shards: s.shards,
      rowsPerSecond: s.rows > 0 && s.seconds > 0 ? s.rows / s.seconds : null,
      seconds: s.seconds,
      createdAt: rec.createdAt,
      finishedAt: rec.finishedAt ?? null,
      backend: s.backend,
      fingerprint: s.fingerprint,
      output: { uri: s.output.uri, manifest: s.output.manifest },
      error: s.error ?? null,
    });
  }
  return views;
}

/**
 * The `layertap worker` processes connected to the deployment's shard queue, by name (host:pid),
 * from Redis's list of clients. A `layertap run` works its run in queues of its own and is not among them.
 */
export async function connectedWorkers(shards: Queue): Promise<string[]> {
  const clients = await shards.getWorkers();
  // BullMQ names a worker's connections '<queue client name>:w:<worker name>'
  const names = clients.map((c) => String(c['rawname'] ?? '').split(':w:')[1] ?? '').filter((n) => n !== '');
  return [...new Set(names)].sort();
}
