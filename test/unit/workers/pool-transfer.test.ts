import { afterAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../../src/config/index.js';
import { resolveJob } from '../../../src/pipeline/index.js';
import { EmbedPool } from '../../../src/workers/pool.js';
import { SEED_MODEL } from '../../helpers/index.js';
import { writeNpy } from '../../../src/sources/npy.js';
import { tempDir } from '../../helpers/index.js';
import { join } from 'node:path';

// Inputs cross into the pool by transfer: the sender's buffer is detached, not copied.
describe('pool transfer', () => {
  const pool = new EmbedPool({ threads: 1, backend: 'cpu' });
  afterAll(() => pool.close());

  it('detaches the input buffer and returns features of the right shape', async () => {
    const tmp = await tempDir();
    try {
      await writeNpy(join(tmp.dir, 'x.npy'), new Float32Array(28 * 28), [1, 28, 28, 1]);
      const job = await resolveJob(
        parseJob({
          name: 't',
          source: { uri: join(tmp.dir, 'x.npy') },
          model: { uri: SEED_MODEL, backend: 'cpu' },
          taps: [{ layer: 'linear_1.0' }, { layer: 'conv_16.2' }],
          sink: { uri: tmp.dir },
        }),
      );
      const data = new Float32Array(4 * 28 * 28).map((_, i) => (i % 97) / 97);
      const res = await pool.run({
        model: { uri: job.model.uri, backend: 'cpu', taps: job.taps, inputShape: job.inputShape, fingerprint: job.fingerprint, preprocess: null },
        input: { kind: 'tensor', ids: ['0', '1', '2', '3'], data },
      });
      expect(data.buffer.byteLength).toBe(0); // transferred
      expect(res.ok).toEqual([0, 1, 2, 3]);
      expect(res.errors).toEqual([]);
      expect(res.taps.linear_1_0!.shape).toEqual([64]);
      expect(res.taps.linear_1_0!.data.length).toBe(4 * 64);
      expect(res.taps.conv_16_2!.shape).toEqual([13, 13, 16]);
      expect(res.backend).toBe('cpu');
    } finally {
      await tmp.remove();
    }
  });

  it('rejects a bad thread count naming the option', () => {
    expect(() => new EmbedPool({ threads: 0 })).toThrow('options.threads must be a positive integer, got 0');
  });
});
