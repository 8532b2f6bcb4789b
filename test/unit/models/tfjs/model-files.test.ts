import { readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { describeModel, listLayers, loadRunner, singleFloatInput, UnknownLayerError } from '../../../../src/models/index.js';
import { SEED_LEAVES } from '../../../helpers/index.js';
import { copySeedModel, removeTempDirs, SEED_MODEL, tap, tempDir } from '../../../helpers/models.js';

const SEED_LAYERS = ['input', ...SEED_LEAVES];

afterAll(removeTempDirs);

// model.json is edited structurally here; its full typing would add nothing to these tests
type Json = Record<string, any>;

function editModelJson(file: string, edit: (json: Json) => void): void {
  const json = JSON.parse(readFileSync(file, 'utf8')) as Json;
  edit(json);
  writeFileSync(file, JSON.stringify(json));
}

function spec(uri: string, layer = 'linear_1.1') {
  return { uri, backend: 'cpu' as const, taps: [tap(layer)], inputShape: [28, 28, 1], fingerprint: 't', preprocess: null };
}

describe('describeModel on the seed model', () => {
  it('reads format, input shape, layer names and a content hash without loading tfjs', async () => {
    const d = await describeModel(SEED_MODEL);
    expect(d.format).toBe('tfjs-layers');
    expect(d.inputShape).toEqual([null, 28, 28, 1]);
    expect(d.inputLayout).toBe('nhwc');
    expect(d.inputs).toEqual([{ name: 'input', dtype: 'float32', dims: [null, 28, 28, 1] }]);
    expect(d.layerNames).toEqual(SEED_LAYERS);
    expect(d.contentHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('runs its one float32 input by name, and names the input it takes otherwise', async () => {
    const runner = await loadRunner(spec(SEED_MODEL));
    try {
      expect(runner.inputs).toEqual([{ name: 'input', dtype: 'float32', dims: [null, 28, 28, 1] }]);
      const data = new Float32Array(2 * 28 * 28);
      const out = await runner.run({ input: { dtype: 'float32', dims: [2, 28, 28, 1], data } });
      expect(out['linear_1.1:output']?.data.length).toBe(2 * 64);
      await expect(runner.run({ x: { dtype: 'float32', dims: [2, 28, 28, 1], data } })).rejects.toThrow(
        `run(): 'x' is not an input of the model; model ${SEED_MODEL} takes input: float32 [?, 28, 28, 1]`,
      );
      await expect(runner.run({ input: { dtype: 'int32', dims: [2, 28, 28, 1], data: new Int32Array(2 * 28 * 28) } })).rejects.toThrow(
        "run(): input 'input' is int32, but the model takes input: float32 [?, 28, 28, 1]",
      );
      await expect(runner.run({ input: { dtype: 'float32', dims: [2, 28, 28], data } })).rejects.toThrow(
        "run(): input 'input' has dims [2, 28, 28], but the model takes input: float32 [?, 28, 28, 1]",
      );
    } finally {
      await runner.dispose();
    }
  });

  it('accepts the folder and a file:// URL, with the same hash', async () => {
    const d = await describeModel(SEED_MODEL);
    expect((await describeModel(path.dirname(SEED_MODEL))).contentHash).toBe(d.contentHash);
    expect((await describeModel(pathToFileURL(SEED_MODEL).href)).contentHash).toBe(d.contentHash);
  });

  it('reads a Keras-style topology (model_config.config.layers)', async () => {
    const { modelJson } = copySeedModel();
    editModelJson(modelJson, (json) => {
      json.modelTopology = { keras_version: '2.2.4', backend: 'tensorflow', model_config: json.modelTopology };
    });
    const d = await describeModel(modelJson);
    expect(d.layerNames).toEqual(SEED_LAYERS);
    expect(d.inputShape).toEqual([null, 28, 28, 1]);
    // and it still loads and runs
    const runner = await loadRunner(spec(modelJson));
    const out = await runner.run(singleFloatInput(runner, new Float32Array(28 * 28), [28, 28, 1]));
    expect(out['linear_1.1:output']?.shape).toEqual([64]);
    await runner.dispose();
  });
});

describe('content hash', () => {
  it('is stable for a copy and changes when one weight byte changes', async () => {
    const original = (await describeModel(SEED_MODEL)).contentHash;
    const { dir, modelJson } = copySeedModel();
    expect((await describeModel(modelJson)).contentHash).toBe(original);

    const bin = path.join(dir, 'group1-shard1of1.bin');
    const bytes = readFileSync(bin);
    bytes[1234] = (bytes[1234] ?? 0) ^ 0x01;
    writeFileSync(bin, bytes);
    const changed = (await describeModel(modelJson)).contentHash;
    expect(changed).not.toBe(original);
  });

  it('changes when the topology changes', async () => {
    const original = (await describeModel(SEED_MODEL)).contentHash;
    const { modelJson } = copySeedModel();
    editModelJson(modelJson, (json) => {
      json.modelTopology.config.layers[2].config.max_value = 6;
    });
    expect((await describeModel(modelJson)).contentHash).not.toBe(original);
  });

  it('ignores key order and whitespace in model.json', async () => {
    const original = (await describeModel(SEED_MODEL)).contentHash;
    const { modelJson } = copySeedModel();
    const json = JSON.parse(readFileSync(modelJson, 'utf8')) as Record<string, unknown>;
    const reversed = Object.fromEntries(Object.entries(json).reverse());
    writeFileSync(modelJson, JSON.stringify(reversed, null, 2));
    expect((await describeModel(modelJson)).contentHash).toBe(original);
  });
});

describe('weight paths stay inside the model folder', () => {
  it('rejects a path with ..', async () => {
    const { modelJson } = copySeedModel();
    editModelJson(modelJson, (json) => {
      json.weightsManifest[0].paths = ['../x.bin'];
    });
    const attempts = [() => describeModel(modelJson), () => loadRunner(spec(modelJson)), () => listLayers(modelJson)];
    for (const attempt of attempts) {
      const err = await attempt().then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toContain(modelJson);
      expect(err?.message).toContain("'../x.bin'");
    }
  });

  it('rejects an absolute path and a URL', async () => {
    for (const bad of [path.resolve(SEED_MODEL, '..', 'group1-shard1of1.bin'), 'http://example.com/w.bin']) {
      const { modelJson } = copySeedModel();
      editModelJson(modelJson, (json) => {
        json.weightsManifest[0].paths = [bad];
      });
      await expect(describeModel(modelJson)).rejects.toThrow(`weight path '${bad}' is absolute`);
    }
  });

  it('rejects a symlink that leads out of the folder', async () => {
    const { dir, modelJson } = copySeedModel();
    const outside = tempDir('layertap-outside-');
    const target = path.join(outside, 'secret.bin');
    writeFileSync(target, readFileSync(path.join(dir, 'group1-shard1of1.bin')));
    rmSync(path.join(dir, 'group1-shard1of1.bin'));
    symlinkSync(target, path.join(dir, 'group1-shard1of1.bin'));
    const err = await describeModel(modelJson).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(modelJson);
    expect(err?.message).toContain("'group1-shard1of1.bin'");
    expect(err?.message).toContain('outside the model folder');
  });

  it('accepts a symlink that stays inside the folder', async () => {
    const { dir, modelJson } = copySeedModel();
    symlinkSync(path.join(dir, 'group1-shard1of1.bin'), path.join(dir, 'alias.bin'));
    editModelJson(modelJson, (json) => {
      json.weightsManifest[0].paths = ['alias.bin'];
    });
    expect((await describeModel(modelJson)).contentHash).toBe((await describeModel(SEED_MODEL)).contentHash);
  });
});

describe('missing and mismatched files', () => {
  it('names a missing model.json', async () => {
    const missing = path.join(tmpdir(), 'layertap-nope', 'model.json');
    await expect(describeModel(missing)).rejects.toThrow(`model file not found: ${missing}`);
    await expect(loadRunner(spec(missing))).rejects.toThrow('model file not found');
  });

  it('names a missing weight file', async () => {
    const { dir, modelJson } = copySeedModel();
    rmSync(path.join(dir, 'group1-shard1of1.bin'));
    await expect(describeModel(modelJson)).rejects.toThrow(`weight file not found: ${path.join(dir, 'group1-shard1of1.bin')} (listed in ${modelJson})`);
  });

  it('rejects weight files shorter than the manifest needs, before loading', async () => {
    const { dir, modelJson } = copySeedModel();
    truncateSync(path.join(dir, 'group1-shard1of1.bin'), 28948 - 4);
    await expect(describeModel(modelJson)).rejects.toThrow(/hold 28944 bytes, but the manifest's weights need 28948 bytes/);
    await expect(loadRunner(spec(modelJson))).rejects.toThrow(modelJson);
  });

  it('accounts for quantized weights when checking sizes', async () => {
    const { modelJson } = copySeedModel();
    editModelJson(modelJson, (json) => {
      // as uint8 the same weights would need a quarter of the bytes
      for (const w of json.weightsManifest[0].weights) w.quantization = { dtype: 'uint8', scale: 1, min: 0 };
    });
    await expect(describeModel(modelJson)).rejects.toThrow(/hold 28948 bytes, but the manifest's weights need 7237 bytes/);
  });

  it('rejects a file that is not a TF.js model', async () => {
    const dir = tempDir('layertap-bad-');
    writeFileSync(path.join(dir, 'model.json'), '{"modelTopology": {"something": 1}}');
    await expect(describeModel(dir)).rejects.toThrow(/invalid model\.json .*neither a LayersModel/);
    writeFileSync(path.join(dir, 'model.json'), 'not json');
    await expect(describeModel(dir)).rejects.toThrow(/invalid model\.json .*not JSON/);
  });
});

describe('unknown layers', () => {
  it('throws UnknownLayerError listing the valid layer names', async () => {
    const err = await loadRunner(spec(SEED_MODEL, 'dense_9')).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnknownLayerError);
    const e = err as UnknownLayerError;
    expect(e.layer).toBe('dense_9');
    expect(e.choices).toEqual(SEED_LAYERS);
    expect(e.message).toBe(`unknown layer 'dense_9'; layers are: ${SEED_LAYERS.join(', ')}`);
  });

  it('rejects rows of the wrong shape at load', async () => {
    await expect(loadRunner({ ...spec(SEED_MODEL), inputShape: [32, 32, 1] })).rejects.toThrow(
      'takes rows of shape [28, 28, 1], but the job feeds [32, 32, 1]',
    );
  });
});

describe('listLayers on the seed model', () => {
  it('lists name, class, output shape, params and inbound layers like named_modules()', async () => {
    const layers = await listLayers(SEED_MODEL);
    expect(layers.map((l) => l.name)).toEqual(SEED_LAYERS);
    const byName = Object.fromEntries(layers.map((l) => [l.name, l]));
    expect(byName['input']).toMatchObject({ className: 'InputLayer', outputShape: [null, 28, 28, 1], params: 0, inputs: [] });
    expect(byName['conv_16.0']).toMatchObject({ className: 'Conv2D', outputShape: [null, 26, 26, 16], params: 3 * 3 * 16 + 16, inputs: ['input'] });
    expect(byName['conv_16.2']).toMatchObject({ className: 'MaxPooling2D', outputShape: [null, 13, 13, 16], params: 0 });
    expect(byName['conv_32.2']).toMatchObject({ className: 'GlobalAveragePooling2D', outputShape: [null, 32] });
    expect(byName['linear_1.0']).toMatchObject({ className: 'Dense', outputShape: [null, 64], params: 32 * 64 + 64, inputs: ['conv_32.2'] });
    expect(byName['linear_class.0']).toMatchObject({ params: 64 * 5 + 5, inputs: ['linear_1.1'] });
  });
});
