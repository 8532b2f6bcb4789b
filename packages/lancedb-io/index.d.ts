/** A column of a LanceDB table: its name and its Arrow type as text ('FixedSizeList[384]<Float32>'). */
export interface LanceField {
  name: string;
  type: string;
}

/** How `write` puts rows into a table (rows are matched on their `id` column). */
export type LanceWriteMode = 'create' | 'overwrite' | 'merge' | 'mirror';

/** What a write did. */
export interface LanceWriteResult {
  version: number;
  inserted: number;
  updated: number;
  deleted: number;
}

/**
 * The tables of one LanceDB database (a folder, or an s3:// prefix). Rows go in as Arrow IPC
 * stream bytes: this package carries the apache-arrow version @lancedb/lancedb takes, so no Arrow
 * object crosses between versions.
 */
export declare class LanceTables {
  /** opens (or starts) the database at `uri`; `storageOptions` as LanceDB takes them (endpoint, allow_http, region, ...) */
  static connect(uri: string, storageOptions?: Record<string, string>): Promise<LanceTables>;
  tableNames(): Promise<string[]>;
  /** the table's columns, rows and version, or null when there is no such table */
  describe(name: string): Promise<{ fields: LanceField[]; rows: number; version: number } | null>;
  /**
   * create: a new table of these rows; overwrite: the table becomes these rows; merge: upsert on
   * `id`; mirror: upsert on `id` and delete the table's rows whose id is not among these
   */
  write(name: string, ipc: Uint8Array, mode: LanceWriteMode): Promise<LanceWriteResult>;
  /** every id in the table */
  ids(name: string): Promise<string[]>;
  deleteIds(name: string, ids: readonly string[]): Promise<{ version: number }>;
  countRows(name: string, filter?: string): Promise<number>;
  /** builds (or rebuilds) a vector index on `column` */
  createIndex(name: string, column: string, opts: { type: 'ivf_pq' | 'hnsw_sq'; metric: 'cosine' | 'l2' | 'dot'; numPartitions?: number }): Promise<{ version: number }>;
  listIndices(name: string): Promise<Array<{ name: string; type: string; columns: string[] }>>;
  /** the k rows nearest to `vector` in `column`, by LanceDB's own vector search */
  search(name: string, column: string, vector: ArrayLike<number>, k: number, metric: 'cosine' | 'l2' | 'dot'): Promise<Array<{ id: string; distance: number }>>;
  close(): void;
}
