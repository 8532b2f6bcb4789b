import type { RecordBatch } from 'apache-arrow';

/**
 * A table destination: a part format whose rows end in a table (a LanceDB table, ...) rather
 * than only in part files. Shards stage their record batches as part files under the run's
 * deterministic names, as any format's, so a retried or killed shard replaces its rows instead of
 * adding to them; when every shard has committed, finalize hands the staged batches to
 * {@link TableDestination.commit} once, which makes the table equal to the run's rows (and may be
 * called again, with the same rows, if finalize is retried). The run's manifest and markers stay
 * on the file/S3 location {@link TableFormat.runsUri} names.
 */
export interface TableFormat {
  /** the `sink:` fields this destination takes besides uri and format ('table', 'index') */
  fields: readonly TableSinkField[];
  /** the file/S3 location of the run folders (staged parts, manifests, markers) for a table at `spec` */
  runsUri(spec: TableSpec): string;
  /** fails with a message naming the location when the destination cannot be opened or written */
  check(spec: TableSpec): Promise<void>;
  open(spec: TableSpec): Promise<TableDestination>;
}

/** `sink:` fields a table destination may take. */
export type TableSinkField = 'table' | 'index';

/** A vector index built on the table's tap columns after each commit. */
export interface TableIndexSpec {
  type: 'ivf_pq' | 'hnsw_sq';
  metric: 'cosine' | 'l2' | 'dot';
}

/** Where a table destination writes: the database (folder or s3:// prefix) and the table in it. */
export interface TableSpec {
  /** the database location as the job gave it, absolute */
  uri: string;
  /** the table's name (the job's `name` unless `sink.table` says otherwise) */
  table: string;
  index?: TableIndexSpec;
  /** connection to an S3-compatible store, for s3:// uris */
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
}

/** The rows a shard staged, read when the destination asks for them. */
export interface StagedShard {
  index: number;
  rows: number;
  batches(): AsyncIterable<RecordBatch>;
}

/** A committed run as its table destination receives it. */
export interface TableRun {
  runId: string;
  fingerprint: string;
  /** rows of every shard, in shard order */
  rows: number;
  shards: readonly StagedShard[];
  /**
   * rows the table holds already as they are: when the table is still at `version` (the version
   * the last commit left), the rows of these ids are the same as the run's and need not be
   * written again. Absent: every row is written
   */
  unchanged?: { version: number; ids: ReadonlySet<string> };
}

/** What a commit did to the table. */
export interface TableCommit {
  /** the database location */
  uri: string;
  table: string;
  /** rows in the table after the commit: the run's rows */
  rows: number;
  /** the table's version after the commit (and its index), when the destination has versions */
  version: number | null;
  inserted: number;
  updated: number;
  deleted: number;
  /** rows left as they were, since the table held them already (see {@link TableRun.unchanged}) */
  unchanged: number;
  /** the indexes built after the commit, per column; an index that could not be built says why */
  indexes: Array<{ column: string; type: string; metric: string; error?: string }>;
}

/** A table the run's rows go into. */
export interface TableDestination {
  /** makes the table hold exactly the run's rows: rows of ids it had are replaced, rows of ids the run lacks are deleted */
  commit(run: TableRun): Promise<TableCommit>;
  close(): Promise<void>;
}
