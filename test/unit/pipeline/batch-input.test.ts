import { describe, expect, it } from 'vitest';
import type { ResolvedJob } from '../../../src/config/resolved.js';
import { batchInput } from '../../../src/pipeline/batch-input.js';
import type { SourceRow } from '../../../src/sources/types.js';

type TensorRow = Extract<SourceRow, { kind: 'tensor' }>;

// only the fields batchInput reads
const jobFor = (inputShape: number[]) => ({ preprocess: null, inputShape }) as unknown as ResolvedJob;

function chunkRows(rows: number, per: number, first = 0): { chunk: Float32Array; rows: TensorRow[] } {
  const chunk = new Float32Array(rows * per).map((_, i) => i + first * per);
  return {
    chunk,
    rows: Array.from({ length: rows }, (_, r) => ({ id: String(first + r), kind: 'tensor' as const, data: chunk.subarray(r * per, (r + 1) * per) })),
  };
}

describe('batchInput for tensor rows', () => {
  it('sends a batch that fills its source chunk as that very buffer, nothing copied', () => {
    const { chunk, rows } = chunkRows(4, 6);
    const input = batchInput(jobFor([2, 3]), rows);
    expect(input.kind).toBe('tensor');
    if (input.kind !== 'tensor') return;
    expect(input.ids).toEqual(['0', '1', '2', '3']);
    expect(input.data.buffer).toBe(chunk.buffer);
    expect(input.data.length).toBe(24);
  });

  it('copies small rows into a fresh batch when they are only part of a chunk', () => {
    const { chunk, rows } = chunkRows(4, 6);
    const some = [rows[0]!, rows[2]!, rows[3]!]; // a row was carried over or failed
    const input = batchInput(jobFor([6]), some);
    expect(input.kind).toBe('tensor');
    if (input.kind !== 'tensor') return;
    expect(input.data.buffer).not.toBe(chunk.buffer);
    expect(Array.from(input.data)).toEqual([...Array.from(chunk.subarray(0, 6)), ...Array.from(chunk.subarray(12, 24))]);
  });

  it('sends big rows that do not fill a chunk one buffer each, copied out of the shared chunk', () => {
    const per = 32 * 1024; // 128 KB rows
    const { chunk, rows } = chunkRows(3, per);
    const input = batchInput(jobFor([per]), rows.slice(0, 2));
    expect(input.kind).toBe('rows');
    if (input.kind !== 'rows') return;
    expect(input.rows.map((r) => r.buffer.byteLength)).toEqual([per * 4, per * 4]);
    expect(input.rows.every((r) => r.buffer !== chunk.buffer)).toBe(true);
    expect(input.rows[1]![0]).toBe(per);
  });

  it('does not mistake rows of the right total size in the wrong order for a whole chunk', () => {
    const { chunk, rows } = chunkRows(2, 6);
    const input = batchInput(jobFor([6]), [rows[1]!, rows[0]!]);
    if (input.kind !== 'tensor') throw new Error('expected a tensor batch');
    expect(input.data.buffer).not.toBe(chunk.buffer);
    expect(Array.from(input.data.subarray(0, 6))).toEqual(Array.from(chunk.subarray(6, 12)));
  });
});
