import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/config/index.js';
import { resolveJob } from '../../src/pipeline/index.js';
import { modelSpecOf } from '../../src/workers/model-spec.js';
import { EmbedPool } from '../../src/workers/pool.js';
import { HubStandIn, sentenceTransformersFiles } from '../helpers/hub-standin.js';
import { maxAbsDiff, tempDir } from '../helpers/index.js';
import { readNpy, TEXT_DIR } from '../helpers/models.js';

const REPO = 'layertap-test/tiny-st';

// A job planned on one host runs on workers of another, whose Hub cache does not hold the model:
// each worker fetches the commit planning pinned, once per host, and embeds as the planner would.
describe('a Hub model on a worker whose Hub cache lacks it', () => {
  let hub: HubStandIn;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let pool: EmbedPool | null = null;
  const saved = { HF_HOME: process.env.HF_HOME, HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE };

  beforeAll(async () => {
    tmp = await tempDir('layertap-hub-worker-');
    hub = await HubStandIn.start({ [REPO]: { refs: { main: sentenceTransformersFiles('mean_tokens', true) } } });
    process.env.HF_ENDPOINT = hub.url;
    delete process.env.HF_HUB_OFFLINE;
  });
  afterAll(async () => {
    await pool?.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await hub.close();
    await tmp.remove();
  });

  it('fetches the planned commit into its own cache, once for all its threads, and gives the same features', async () => {
    process.env.HF_HOME = join(tmp.dir, 'planner');
    const job = parseJob({
      name: 'st',
      source: { uri: join(TEXT_DIR, 'sentences.jsonl'), idColumn: 'id', inputColumn: 'text' },
      model: { uri: `hf:${REPO}` },
      sink: { uri: join(tmp.dir, 'out') },
    });
    const resolved = await resolveJob(job);
    const spec = modelSpecOf(resolved);
    expect(spec.hub).toEqual({ repo: REPO, revision: 'main', sha: hub.sha(REPO), file: 'onnx/model.onnx' });
    // the planning host's cache is not on this one
    await rm(join(tmp.dir, 'planner'), { recursive: true });
    process.env.HF_HOME = join(tmp.dir, 'worker');
    const before = hub.downloads()['onnx/model.onnx'] ?? 0;

    // pool threads read the environment they start with
    pool = new EmbedPool({ threads: 2 });
    const lines = readFileSync(join(TEXT_DIR, 'sentences.jsonl'), 'utf8').trim().split('\n');
    const texts = lines.map((l) => (JSON.parse(l) as { text: string }).text);
    const halves = [texts.slice(0, 5), texts.slice(5)];
    const results = await Promise.all(
      halves.map((part, h) => pool!.run({ model: spec, input: { kind: 'text', ids: part.map((_, i) => `${h}-${i}`), texts: part } })),
    );

    expect(hub.downloads()['onnx/model.onnx']).toBe(before + 1);
    expect(existsSync(join(tmp.dir, 'worker', 'hub', 'models--layertap-test--tiny-st', 'snapshots', hub.sha(REPO), 'onnx', 'model.onnx'))).toBe(true);
    // mean over the real tokens, L2-normalised: the fixture's PyTorch mean capture, normalised
    const mean = readNpy(join(TEXT_DIR, 'expected', 'encoder.layer.3__mean.npy')).data;
    const want = Array.from({ length: 10 }, (_, r) => {
      const row = mean.subarray(r * 32, (r + 1) * 32);
      const norm = Math.hypot(...row);
      return row.map((v) => v / norm);
    });
    const got = results.flatMap((res) => {
      const data = res.taps['embedding']!.data as Float32Array;
      return res.ok.map((_, i) => data.subarray(i * 32, (i + 1) * 32));
    });
    expect(got.length).toBe(10);
    got.forEach((row, r) => expect(maxAbsDiff(row, want[r]!), `row ${r}`).toBeLessThanOrEqual(1e-5));
  }, 60_000);
});
