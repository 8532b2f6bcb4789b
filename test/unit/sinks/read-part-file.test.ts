import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { defaultFormats, encodeParquet, readPartFile, type PartFormatEntry } from '../../../src/sinks/index.js';

const table = tableFromArrays({ id: ['a', 'b'], x: Float32Array.from([1, 2]) });

describe('readPartFile asks the format registry', () => {
  it('reads Arrow and Parquet bytes by their name, or by what the formats recognise', async () => {
    const arrow = tableToIPC(table, 'file');
    const parquet = await encodeParquet(tableToIPC(table, 'stream'), table.schema);
    for (const [bytes, name] of [
      [arrow, 'run/part-00000.arrow'],
      [parquet, 'run/part-00000.parquet'],
      [arrow, undefined],
      [parquet, undefined],
    ] as const) {
      const t = await readPartFile(bytes, name === undefined ? {} : { name });
      expect([...t.getChild('id')!].map(String)).toEqual(['a', 'b']);
      expect([...t.getChild('x')!]).toEqual([1, 2]);
    }
  });

  it('decodes a part file of a format the program adds, by its extension', async () => {
    const reads: string[] = [];
    const reversed: PartFormatEntry = {
      ...defaultFormats().get('arrow'),
      extension: 'rev',
      recognises: () => false,
      read: async (bytes, what) => {
        reads.push(what);
        return defaultFormats().get('arrow').read(Uint8Array.from(bytes).reverse(), what);
      },
    };
    const formats = defaultFormats().with('rev', reversed);
    const bytes = Uint8Array.from(tableToIPC(table, 'file')).reverse();
    const t = await readPartFile(bytes, { name: 'part-00003.rev', formats });
    expect([...t.getChild('id')!].map(String)).toEqual(['a', 'b']);
    expect(reads).toEqual(['part-00003.rev']);
    // unnamed bytes no format recognises
    await expect(readPartFile(bytes, { formats })).rejects.toThrow('the given bytes is not a part file of a known format (.rev, .arrow, .parquet)');
  });
});
