import { type RecordBatch, Table, tableToIPC } from 'apache-arrow';
import type { LanceTables, LanceWriteMode } from '@layertap/lancedb-io';
import { isS3Uri, resolveConnection } from '../storage/s3-client.js';
import { FieldError } from '../types/errors.js';
import { ID_COLUMN } from './arrow-schema.js';
import type { TableCommit, TableDestination, TableRun, TableSpec } from './table-destination.js';

/**
 * Rows per LanceDB write. A run of at most this many rows goes in as one merge that also deletes
 * the rows the run lacks, so the table moves from the last run's rows to this run's in one
 * version; a larger run is upserted in writes of this many rows (memory stays bounded), then the
 * ids it lacks are deleted.
 */
export const LANCE_WRITE_ROWS = 65_536;

/** LanceDB's storage options for a database at `spec.uri`: the S3 connection of the job, for s3:// uris. */
export function lanceStorageOptions(spec: TableSpec): Record<string, string> {
  if (!isS3Uri(spec.uri)) return {};
  const c = resolveConnection(spec);
  const env = process.env;
  return {
    aws_region: c.region,
    ...(c.endpoint !== undefined ? { aws_endpoint: c.endpoint, allow_http: String(c.endpoint.startsWith('http://')) } : {}),
    aws_virtual_hosted_style_request: String(!c.forcePathStyle),
    ...(env.AWS_ACCESS_KEY_ID ? { aws_access_key_id: env.AWS_ACCESS_KEY_ID } : {}),
    ...(env.AWS_SECRET_ACCESS_KEY ? { aws_secret_access_key: env.AWS_SECRET_ACCESS_KEY } : {}),
    ...(env.AWS_SESSION_TOKEN ? { aws_session_token: env.AWS_SESSION_TOKEN } : {}),
  };
}

async function connect(spec: TableSpec): Promise<LanceTables> {
  const { LanceTables } = await import('@layertap/lancedb-io');
  try {
    return await LanceTables.connect(spec.uri, lanceStorageOptions(spec));
  } catch (err) {
    throw new FieldError('sink.uri', `cannot open the LanceDB database ${spec.uri}: ${(err as Error).message}`, { cause: err });
  }
}

/** Arrow IPC stream bytes of `batches` (apache-arrow 21 here, read by the apache-arrow LanceDB takes). */
function ipcOf(batches: RecordBatch[]): Uint8Array {
  return tableToIPC(new Table(batches), 'stream');
}

/** A column's type as text, as the LanceDB side describes its columns. */
function typeText(t: unknown): string {
  return String(t);
}

/**
 * Rows of a run into a LanceDB table keyed by `id`, with each tap a vector column. The table is
 * created with the first run, replaced when a run's columns differ from it (another model or
 * taps), and otherwise merged: rows of ids it has are updated, new ids inserted, ids the run
 * lacks deleted. Committing the same run again leaves the same rows.
 */
export class LanceDbDestination implements TableDestination {
  private constructor(
    private readonly spec: TableSpec,
    private readonly db: LanceTables,
    /** rows per write. @defaultValue LANCE_WRITE_ROWS */
    private readonly writeRows: number,
  ) {}

  /** Opens (or starts) the database; a folder that cannot be made or a store that refuses is a `sink.uri` error. */
  static async check(spec: TableSpec): Promise<void> {
    const db = await connect(spec);
    try {
      await db.tableNames();
    } catch (err) {
      throw new FieldError('sink.uri', `cannot list the tables of the LanceDB database ${spec.uri}: ${(err as Error).message}`, { cause: err });
    } finally {
      db.close();
    }
  }

  /** Opens the database of `spec`; `writeRows` is the rows per write. @defaultValue LANCE_WRITE_ROWS */
  static async open(spec: TableSpec, opts: { writeRows?: number } = {}): Promise<LanceDbDestination> {
    return new LanceDbDestination(spec, await connect(spec), opts.writeRows ?? LANCE_WRITE_ROWS);
  }

  async commit(run: TableRun): Promise<TableCommit> {
    const name = this.spec.table;
    const before = await this.db.describe(name);
    const totals = { inserted: 0, updated: 0, deleted: 0, unchanged: 0 };
    let version: number | null = before?.version ?? null;
    let exists = before !== null;
    // decided at the first row: whether the table's columns are the run's (else it is replaced:
    // a merge cannot change them), and whether rows the table already holds as they are can be left out
    let replace = false;
    let skip: ReadonlySet<string> | null = null;
    let single = false;
    const ids = new Set<string>();
    let pending: RecordBatch[] = [];
    let pendingRows = 0;
    let first = true;
    const flush = async (last: boolean) => {
      if (pending.length === 0) return;
      const mode: LanceWriteMode = !exists ? 'create' : replace ? 'overwrite' : single && last ? 'mirror' : 'merge';
      const r = await this.db.write(name, ipcOf(pending), mode);
      if (mode === 'overwrite') {
        // the rows the table had are gone with it
        totals.deleted += before?.rows ?? 0;
        replace = false;
      }
      totals.inserted += r.inserted;
      totals.updated += r.updated;
      totals.deleted += r.deleted;
      version = r.version;
      exists = true;
      pending = [];
      pendingRows = 0;
    };
    const add = async (batch: RecordBatch) => {
      if (pendingRows + batch.numRows > this.writeRows && pending.length > 0) await flush(false);
      pending.push(batch);
      pendingRows += batch.numRows;
    };
    for (const shard of run.shards) {
      for await (const batch of shard.batches()) {
        if (batch.numRows === 0) continue;
        if (first) {
          first = false;
          replace = before !== null && !sameColumns(before.fields, batch);
          // the table is still the one the run was compared with (nobody wrote it since)
          skip = !replace && run.unchanged !== undefined && before !== null && before.version === run.unchanged.version ? run.unchanged.ids : null;
          single = skip === null && run.rows <= this.writeRows;
        }
        const col = batch.getChild(ID_COLUMN)!;
        if (skip === null) {
          for (let i = 0; i < batch.numRows; i++) ids.add(String(col.get(i)));
          await add(batch);
          continue;
        }
        // only the rows that changed go in, as slices of consecutive rows
        let start = -1;
        for (let i = 0; i <= batch.numRows; i++) {
          const id = i < batch.numRows ? String(col.get(i)) : null;
          if (id !== null) ids.add(id);
          const keep = id !== null && !skip.has(id);
          if (id !== null && !keep) totals.unchanged++;
          if (keep && start < 0) start = i;
          if (!keep && start >= 0) {
            await add(batch.slice(start, i));
            start = -1;
          }
        }
      }
    }
    await flush(true);
    if (exists && !single) {
      // ids the run lacks (for an empty run: every id; the table is emptied, not dropped, so its readers still open it)
      const stale = (await this.db.ids(name)).filter((id) => !ids.has(id));
      if (stale.length > 0) version = (await this.db.deleteIds(name, stale)).version;
      totals.deleted += stale.length;
    }
    const rows = exists ? await this.db.countRows(name) : 0;
    const indexes: TableCommit['indexes'] = [];
    if (this.spec.index && exists && rows > 0) {
      const described = await this.db.describe(name);
      for (const f of described?.fields ?? []) {
        if (!/^FixedSizeList\[\d+\]<Float(32|16)>$/.test(f.type)) continue;
        const { type, metric } = this.spec.index;
        try {
          version = (await this.db.createIndex(name, f.name, { type, metric })).version;
          indexes.push({ column: f.name, type, metric });
        } catch (err) {
          indexes.push({ column: f.name, type, metric, error: (err as Error).message.split('\n')[0]!.slice(0, 300) });
        }
      }
    }
    if (rows !== run.rows) {
      throw new Error(`LanceDB table '${name}' in ${this.spec.uri} holds ${rows} rows after the commit, but run ${run.runId} has ${run.rows}`);
    }
    return { uri: this.spec.uri, table: name, rows, version, ...totals, indexes };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** Whether the table's columns are the batch's, by name and type. */
function sameColumns(fields: ReadonlyArray<{ name: string; type: string }>, batch: RecordBatch): boolean {
  const mine = batch.schema.fields;
  return fields.length === mine.length && fields.every((f, i) => f.name === mine[i]!.name && f.type === typeText(mine[i]!.type));
}
