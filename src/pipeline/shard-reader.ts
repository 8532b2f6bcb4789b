import type { ReadHint, ShardSpec, Source } from '../sources/types.js';
import type { BaseLookup, ContentHasher } from './incremental.js';
import type { ErrorRow, InputRow } from './shard-rows.js';

/** A shard's row as the reader hands it on: to embed, to carry over from the base run, or failed. */
export type ReadRow =
  | { kind: 'embed'; pos: number; hash: string; row: InputRow }
  /** `row`: the source row, whose carried columns (and text, for chunks) the output takes from the source */
  | { kind: 'carry'; pos: number; id: string; hash: string; row: InputRow }
  | { kind: 'error'; error: ErrorRow };

/**
 * First stage of a shard: streams its rows from the source in order, numbers them, and hashes
 * each input's content. In an incremental run, a row whose content the base run already embedded
 * is marked to be carried over instead of embedded again.
 */
export class ShardReader {
  constructor(
    private readonly source: Source,
    private readonly hash: ContentHasher,
    /** the base run of an incremental run, else null */
    private readonly base: BaseLookup | null,
  ) {}

  /** The shard's rows in source order. Throws 'shard aborted' at the next row once `signal` is aborted. */
  async *rows(shard: ShardSpec, hint: ReadHint, signal?: AbortSignal): AsyncGenerator<ReadRow> {
    let pos = 0;
    for await (const row of this.source.read(shard, hint)) {
      if (signal?.aborted) throw new Error('shard aborted');
      if (row.kind === 'error') {
        yield { kind: 'error', error: { pos, id: row.id, stage: row.stage, message: row.message } };
      } else {
        const hash = this.hash(row);
        yield this.base?.has(hash) ? { kind: 'carry', pos, id: row.id, hash, row } : { kind: 'embed', pos, hash, row };
      }
      pos++;
    }
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
