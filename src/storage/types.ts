/** A file being written; nothing is visible under its final name until `commit()`. */
export interface SinkWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** make the file visible under its final name, atomically; returns its full path/URI and size */
  commit(): Promise<{ uri: string; bytes: number }>;
  /** drop what was written; the final name is left as it was */
  abort(): Promise<void>;
}

/** Storage for a run's output (local directory or object store). Keys are '/'-separated. */
export interface Sink {
  /** the sink's root as the user gave it, normalised (absolute path or s3:// URI) */
  readonly uri: string;
  /** full path/URI of a key */
  resolve(key: string): string;
  /**
   * fails with a message naming the location when the sink cannot be written (e.g. a missing
   * bucket); with `dataset`, writes and removes a probe under `<dataset>/`, so that a folder or
   * bucket that refuses writes is found before any work
   */
  check(dataset?: string): Promise<void>;
  createWriter(key: string): Promise<SinkWriter>;
  /** write a small object atomically */
  put(key: string, data: Uint8Array | string): Promise<string>;
  get(key: string): Promise<Uint8Array | null>;
  exists(key: string): Promise<boolean>;
  /** keys under a prefix (recursive), committed objects only */
  list(prefix: string): Promise<string[]>;
  /** remove leftovers of aborted writers under a prefix (temp files, partial uploads) */
  cleanup(prefix: string): Promise<void>;
}
