import { describe, expect, it } from 'vitest';
import { contentHasher } from '../../../src/pipeline/incremental.js';

describe('content hash of input rows', () => {
  it('is XXH3-128 of the bytes, named by its algorithm', async () => {
    const hash = await contentHasher();
    // as Python's xxhash.xxh3_128_hexdigest(b'') and (b'abc') give
    expect(hash({ id: 'a', kind: 'bytes', bytes: new Uint8Array(0) })).toBe('xxh3-128:99aa06d3014798d86001c324468d497f');
    expect(hash({ id: 'a', kind: 'bytes', bytes: new TextEncoder().encode('abc') })).toBe('xxh3-128:06b05ab6733a618578af5f94892f3950');
  });

  it('hashes a tensor row by its float32 bytes, whether it is a view of a chunk or owns its buffer', async () => {
    const hash = await contentHasher();
    const chunk = new Float32Array(3 * 1000).map((_, i) => Math.sin(i));
    const view = chunk.subarray(1000, 2000);
    const own = view.slice();
    expect(hash({ id: '1', kind: 'tensor', data: view })).toBe(hash({ id: 'x', kind: 'tensor', data: own }));
    expect(hash({ id: '1', kind: 'tensor', data: view })).toBe(hash({ id: '1', kind: 'bytes', bytes: new Uint8Array(own.buffer) }));
    // one value changed in its last bit
    const changed = own.slice();
    new Uint32Array(changed.buffer)[999]! ^= 1;
    expect(hash({ id: '1', kind: 'tensor', data: changed })).not.toBe(hash({ id: '1', kind: 'tensor', data: own }));
    expect(hash({ id: '0', kind: 'tensor', data: chunk.subarray(0, 1000) })).not.toBe(hash({ id: '1', kind: 'tensor', data: view }));
  });
});
