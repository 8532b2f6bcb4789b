import { tableToIPC } from 'apache-arrow';
import { buildSchema, PartWriter, schemaColumns, writeErrorsFile } from '../sinks/index.js';
import type { PartFormatEntry } from '../sinks/formats.js';
import { errorsName, partName, rowIndexKey, runPrefix } from '../storage/layout.js';
import type { Sink } from '../storage/types.js';
import { VERSION } from '../version.js';
import { DuplicateIdCounter, type DuplicateIds } from './duplicate-ids.js';
import { encodeRowIndex } from './incremental.js';
import type { ErrorRow, FeatureRows, RuntimeInfo } from './shard-rows.js';
import type { ShardJobData } from './types.js';
import type { TapColumn } from '../types/features.js';
import { chunkRows, extraColumns } from './columns.js';

/** A shard's files once committed. */
export interface CommittedShard {
  /** rows in the part file */
  rows: number;
  errorRows: number;
  /** full path/URI of the part file, or null when no row had features */
  file: string | null;
  bytes: number;
  errorsFile: string | null;
  /** ids that more than one row of the part file carries; null when none does */
  duplicateIds: DuplicateIds | null;
}

/**
 * Last stage of a shard: writes its rows to the part file as they come (opened with the first
 * rows, whose shapes and runtime make its schema), records each row's id and content hash for the
 * row index, and collects the error rows. `commit()` closes the part file and writes the row
 * index and the errors file, all under the shard's deterministic names, so a retried shard
 * replaces its files instead of adding to them.
 */
export class ShardWriter {
  private part: PartWriter | null = null;
  private readonly prefix: string;
  private readonly index: { ids: string[]; hashes: string[]; chunks: number[] } = { ids: [], hashes: [], chunks: [] };
  /** source rows written: each chunked document counts once however many chunk rows it has */
  private documents = 0;
  private lastPos = -1;
  /** where the `chunk` column is among the extra values, when the job writes a row per chunk */
  private readonly chunkAt: number;
  private readonly errors: ErrorRow[] = [];
  private readonly duplicates = new DuplicateIdCounter();
  /** per tap column, the per-row shape of the part file ({} until it is opened) */
  private partShapes: Record<string, number[]> = {};
  /** per tap column, its shape and layout as the part file's schema has them ({} until it is opened) */
  private partColumns: Record<string, TapColumn> = {};

  constructor(
    private readonly data: ShardJobData,
    private readonly sink: Sink,
    /** the job's part format, from the registry */
    private readonly format: PartFormatEntry,
  ) {
    this.prefix = runPrefix(data.job.name, data.job.fingerprint, data.runId);
    this.chunkAt = chunkRows(data.job) ? extraColumns(data.job).findIndex((c) => c.kind === 'chunk') : -1;
  }

  addErrors(errors: readonly ErrorRow[]): void {
    this.errors.push(...errors);
  }

  /** Appends rows to the part file; `runtime` goes into its schema if this opens it. */
  async write(rows: FeatureRows, runtime: RuntimeInfo): Promise<void> {
    if (rows.ids.length === 0) return;
    this.part ??= await this.open(rows, runtime);
    await this.part.writeBatch(rows.ids, rows.taps, rows.extra);
    this.index.ids.push(...rows.ids);
    this.index.hashes.push(...rows.hashes);
    if (this.chunkAt >= 0) for (const e of rows.extra) this.index.chunks.push(Number(e[this.chunkAt]));
    // rows come in source order, a document's chunks one after another
    for (const pos of rows.pos) {
      if (pos !== this.lastPos) this.documents++;
      this.lastPos = pos;
    }
    this.duplicates.add(rows.ids);
  }

  /** Source rows written so far (a chunked document once). */
  get documentsWritten(): number {
    return this.documents;
  }

  /** Per tap column, the per-row shape written ({} when no row was). */
  get shapes(): Record<string, number[]> {
    return this.partShapes;
  }

  /** Per tap column, its per-row shape and layout as the part file's field metadata says ({} when no row was written). */
  get columns(): Record<string, TapColumn> {
    return this.partColumns;
  }

  /**
   * Commits the part file, then the row index and the errors file. Fails when the rows and
   * error rows do not add up to the shard's row count.
   */
  async commit(): Promise<CommittedShard> {
    const { shard } = this.data;
    let file: string | null = null;
    let bytes = 0;
    if (this.part) {
      const closed = await this.part.close();
      this.part = null;
      file = closed.uri;
      bytes = closed.bytes;
    }
    const rows = this.index.ids.length;
    if (rows > 0) {
      const chunks = this.chunkAt >= 0 ? this.index.chunks : undefined;
      await this.sink.put(rowIndexKey(this.prefix, shard.index), tableToIPC(encodeRowIndex(this.index.ids, this.index.hashes, chunks), 'file'));
    }
    let errorsFile: string | null = null;
    if (this.errors.length > 0) {
      this.errors.sort((a, b) => a.pos - b.pos);
      errorsFile = await writeErrorsFile(
        this.sink,
        `${this.prefix}/${errorsName(shard.index)}`,
        this.errors.map(({ id, stage, message, pos }) => ({ id, stage, message, position: shard.start + pos })),
      );
    }
    if (this.documents + this.errors.length !== shard.count) {
      throw new Error(`shard ${shard.index}: ${this.documents} rows + ${this.errors.length} errors, but the shard has ${shard.count} rows`);
    }
    return { rows, errorRows: this.errors.length, file, bytes, errorsFile, duplicateIds: this.duplicates.result() };
  }

  /** Drops a part file not committed. */
  async abort(): Promise<void> {
    const part = this.part;
    this.part = null;
    if (part) await part.abort().catch(() => undefined);
  }

  private async open(rows: FeatureRows, runtime: RuntimeInfo): Promise<PartWriter> {
    const { job, runId, shard } = this.data;
    this.partShapes = Object.fromEntries(job.taps.map((t) => [t.as, rows.taps[t.as]!.shape]));
    const schema = buildSchema({
      taps: job.taps,
      extra: extraColumns(job),
      shapes: this.partShapes,
      ragged: new Set(job.taps.filter((t) => rows.taps[t.as]!.lengths !== undefined).map((t) => t.as)),
      layout: runtime.layout,
      text: job.text !== undefined,
      fingerprint: job.fingerprint,
      model: job.model.uri,
      runtime: runtime.backend,
      version: VERSION,
      runId,
    });
    this.partColumns = schemaColumns(schema);
    const key = `${this.prefix}/${partName(shard.index, this.format.extension)}`;
    return PartWriter.open(await this.sink.createWriter(key), schema, this.format);
  }
}
