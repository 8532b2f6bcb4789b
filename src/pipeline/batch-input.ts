import type { ResolvedJob } from '../config/resolved.js';
import type { BatchInput } from '../workers/protocol.js';
import { ownBuffer } from '../workers/transfer.js';
import type { InputRow } from './shard-rows.js';

/** The pool input for a batch of source rows. */
export function batchInput(job: ResolvedJob, rows: InputRow[]): BatchInput {
  const ids = rows.map((r) => r.id);
  if (job.text) {
    return {
      kind: 'text',
      ids,
      texts: rows.map((r) => {
        if (r.kind !== 'text') throw new Error(`row ${r.id}: expected a text row`);
        return r.text;
      }),
    };
  }
  // image rows (a folder, a prefix, or a table's image column) are the ones that get preprocessed
  if (job.preprocess !== null) {
    return { kind: 'images', ids, files: rows.map((r) => (r.kind === 'bytes' ? ownBuffer(r.bytes) : new Uint8Array())) };
  }
  const tensors = rows.map((r) => {
    if (r.kind !== 'tensor') throw new Error(`row ${r.id}: expected a tensor row`);
    return r.data;
  });
  const per = job.inputShape.reduce((a, b) => a * b, 1);
  const whole = wholeBuffer(tensors, per);
  if (whole) {
    // the source read exactly this batch into one buffer: it crosses as it is, nothing copied
    return { kind: 'tensor', ids, data: whole };
  }
  if (per * 4 >= ROWS_BY_TRANSFER_BYTES) {
    // big rows go by transfer as they are and the thread lays them out as one batch: copying them
    // into a fresh batch here doubled the memory this thread allocates, and the GC work with it
    return { kind: 'rows', ids, rows: tensors.map((t) => ownBuffer(t)) };
  }
  // small rows: one copy is cheaper than a transfer per row
  const data = new Float32Array(rows.length * per);
  tensors.forEach((t, i) => data.set(t, i * per));
  return { kind: 'tensor', ids, data };
}

/** The batch as one array when its rows are consecutive views that fill one ArrayBuffer exactly, else null. */
function wholeBuffer(rows: Float32Array[], per: number): Float32Array | null {
  const first = rows[0];
  if (!first || !(first.buffer instanceof ArrayBuffer) || first.buffer.byteLength !== rows.length * per * 4) return null;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.buffer !== first.buffer || r.byteOffset !== i * per * 4 || r.length !== per) return null;
  }
  return new Float32Array(first.buffer);
}

/** Rows at least this big (bytes) cross to the pool thread one buffer each instead of copied into one batch. */
const ROWS_BY_TRANSFER_BYTES = 64 * 1024;
