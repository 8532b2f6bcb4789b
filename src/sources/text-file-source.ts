import { stat } from 'node:fs/promises';
import { countLines, lines, planLines } from './file-lines.js';
import { DEFAULTS } from '../config/defaults.js';
import { checkLimit } from './limits.js';
import { checkShard } from './table-reader.js';
import type { CarriedColumn } from '../config/resolved.js';
import type { ShardSpec, Source, SourceRow } from './types.js';
import { FieldError } from '../types/errors.js';

/** Options of a {@link TextFileSource}. */
export interface TextFileSourceOptions {
  /** longest line read as a row; a longer one is an error row. @defaultValue 64 MiB */
  maxLineBytes?: number;
  /** columns copied into the output: a text file has one, `text` (each line). @defaultValue ['text'] */
  carry?: string[];
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The name of a text file's one column, as `source.carry` names it and the output writes it. */
export const TEXT_COLUMN = 'text';

/**
 * A text file with one row per line: the id is the 0-based line index (as `.npy` row ids), a
 * trailing CR is stripped, and the newline that ends the file gives no row; an empty line is a
 * row of empty text. Planning streams the file once and notes where each shard starts, so a
 * shard's read seeks straight to it.
 */
export class TextFileSource implements Source {
  readonly type = 'text';
  private total: Promise<number> | null = null;
  private readonly maxLineBytes: number;
  private readonly carry: boolean;

  constructor(
    readonly uri: string,
    options: TextFileSourceOptions = {},
  ) {
    this.maxLineBytes = checkLimit('source.maxLineBytes', options.maxLineBytes, DEFAULTS.job.maxLineBytes);
    const carry = options.carry ?? [TEXT_COLUMN];
    carry.forEach((name, i) => {
      if (name !== TEXT_COLUMN)
        throw new FieldError(`source.carry[${i}]`, `no column '${name}' in ${uri}; a text file has one column, '${TEXT_COLUMN}' (each line)`);
    });
    if (carry.length > 1) throw new FieldError('source.carry[1]', `'${TEXT_COLUMN}' is named twice`);
    this.carry = carry.length === 1;
  }

  /** `text` (the line), unless `carry: []`. */
  async carried(): Promise<CarriedColumn[]> {
    return this.carry ? [{ name: TEXT_COLUMN, type: 'utf8', input: true }] : [];
  }

  /** Rows are text, not tensors. */
  async rowShape(): Promise<number[] | null> {
    return null;
  }

  async check(): Promise<void> {
    const s = await stat(this.uri).catch(() => null);
    if (!s?.isFile()) throw new FieldError('source.uri', `${this.uri} is not a file`);
  }

  count(): Promise<number> {
    this.total ??= countLines(this.uri, this.maxLineBytes, () => true);
    return this.total;
  }

  plan(shardSize: number): AsyncIterable<ShardSpec> {
    return planLines(
      this.uri,
      this.maxLineBytes,
      shardSize,
      () => true,
      (rows) => (this.total = Promise.resolve(rows)),
    );
  }

  async *read(shard: ShardSpec): AsyncIterable<SourceRow> {
    const seek = shard.offset !== undefined && Number.isInteger(shard.offset) && shard.offset >= 0;
    if (!seek) checkShard(shard, await this.count(), this.uri);
    let row = seek ? shard.start : 0;
    const end = shard.start + shard.count;
    for await (const line of lines(this.uri, seek ? (shard.offset as number) : 0, this.maxLineBytes)) {
      if (row >= end) return;
      if (row >= shard.start) yield this.toRow(line.bytes, line.over, line.length, row);
      row++;
    }
    if (row < end)
      throw new Error(`${this.uri}: shard ${shard.index} expects lines up to ${end - 1} but the file ends at line ${row - 1} (was it changed after planning?)`);
  }

  async close(): Promise<void> {
    this.total = null;
  }

  private toRow(bytes: Buffer, over: boolean, length: number, index: number): SourceRow {
    const id = String(index);
    if (over) return { id, kind: 'error', stage: 'read', message: `line ${index} is ${length} bytes, more than source.maxLineBytes (${this.maxLineBytes})` };
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
    try {
      const text = decoder.decode(bytes.subarray(0, end));
      return this.carry ? { id, kind: 'text', text, carry: [text] } : { id, kind: 'text', text };
    } catch {
      return { id, kind: 'error', stage: 'read', message: `line ${index} is not valid UTF-8` };
    }
  }
}
