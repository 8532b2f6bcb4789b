import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJob, type JobInput } from '../../../src/config/index.js';
import { resolveJob } from '../../../src/pipeline/index.js';
import { configError, removeTempDirs, SEED_DIR, SEED_MODEL, tempDir, TEXT_DIR } from '../../helpers/models.js';
import { buildOnnx, copySeedOnnx, flipWeightBit, SEED_ONNX, tinyLinear } from '../../helpers/onnx.js';

afterAll(removeTempDirs);

const NPY = path.join(SEED_DIR, 'input_nchw.npy');

function job(over: Partial<JobInput> = {}): JobInput {
  return {
    name: 'seed',
    source: { uri: NPY },
    model: { uri: SEED_ONNX },
    taps: [{ layer: 'linear_class.0', at: 'input' }, { layer: 'conv_16.2' }],
    sink: { uri: '/tmp/unused-out' },
    ...over,
  };
}

describe('job files naming an .onnx model', () => {
  it('resolve with module-path taps, NCHW rows and format onnx', async () => {
    const r = await resolveJob(parseJob(job()));
    expect(r.model).toEqual({ uri: SEED_ONNX, backend: 'auto', format: 'onnx' });
    expect(r.inputShape).toEqual([1, 28, 28]);
    expect(r.taps.map((t) => t.as)).toEqual(['linear_class_0_input', 'conv_16_2']);
    const onnx = await resolveJob(parseJob(job({ model: { uri: SEED_ONNX, backend: 'onnx', intraOpThreads: 2 } })));
    expect(onnx.model).toEqual({ uri: SEED_ONNX, backend: 'onnx', format: 'onnx', intraOpThreads: 2 });
    expect(onnx.fingerprint).toBe(r.fingerprint);
  });

  it('name the nearest layers for a module path that does not exist', async () => {
    const e = await configError(job({ taps: [{ layer: 'linear_1.4' }] }));
    expect(e.fields).toEqual(['taps[0].layer']);
    expect(e.message).toBe(
      `taps[0].layer: unknown layer 'linear_1.4' (did you mean 'linear_1.0', 'linear_1.1' or 'linear_1'?); \`layertap layers ${SEED_ONNX}\` lists them`,
    );
  });

  it('refuse a tap that names a tensor at input, before any work', async () => {
    const e = await configError(job({ taps: [{ layer: 'logits', at: 'input' }] }));
    expect(e.fields).toEqual(['taps[0].layer']);
    expect(e.message).toContain("taps[0].layer: tap 'logits' on ");
    expect(e.message).toContain("'logits' is a tensor, which has no input");
  });

  it('refuse a TF.js backend for an .onnx model and backend onnx for a TF.js model', async () => {
    const wasm = await configError(job({ model: { uri: SEED_ONNX, backend: 'wasm' } }));
    expect(wasm.fields).toEqual(['model.backend']);
    expect(wasm.message).toContain("model.backend: 'wasm' runs TF.js models;");
    const tfjs = await configError(job({ model: { uri: SEED_MODEL, backend: 'onnx' }, source: { uri: path.join(SEED_DIR, 'input_nhwc.npy') } }));
    expect(tfjs.message).toContain("model.backend: 'onnx' runs .onnx models;");
  });

  it('refuse a text model for image and tensor sources, and a non-float input, naming them', async () => {
    const text = path.join(TEXT_DIR, 'model.onnx');
    for (const [source, type] of [
      [{ uri: NPY }, 'npy'],
      [{ uri: SEED_DIR, type: 'images' as const }, 'images'],
    ] as const) {
      const e = await configError(job({ source, model: { uri: text }, taps: [{ layer: 'pooler' }] }));
      expect(e.fields).toEqual(['source.uri']);
      expect(e.message).toBe(`source.uri: the model takes token ids; a ${type} source has no text (use a table with a string column, or a .txt file)`);
    }
    const file = path.join(tempDir('layertap-onnx-int-'), 'ids.onnx');
    writeFileSync(file, buildOnnx({ ...tinyLinear(), input: { name: 'x', dims: ['batch', 2], elemType: 7 } }));
    const ids = await configError(job({ model: { uri: file }, taps: [{ layer: 'lin' }] }));
    expect(ids.message).toBe(`model.uri: '${file}' takes x: int64 [batch, 2]; image and tensor sources feed float32 values`);
  });

  it('refuse rows of the wrong layout', async () => {
    const e = await configError(job({ source: { uri: path.join(SEED_DIR, 'input_nhwc.npy') } }));
    expect(e.message).toBe('source.uri: rows have shape [28,28,1] but the model takes [1,28,28] per row');
  });

  it('change the fingerprint when the ONNX weights change', async () => {
    const copy = copySeedOnnx();
    const before = await resolveJob(parseJob(job({ model: { uri: copy } })));
    expect(before.fingerprint).toBe((await resolveJob(parseJob(job()))).fingerprint);
    flipWeightBit(copy);
    const after = await resolveJob(parseJob(job({ model: { uri: copy } })));
    expect(after.fingerprint).not.toBe(before.fingerprint);
  });

  it('default image preprocessing to the NCHW grayscale input, with mean/std', async () => {
    const dir = tempDir('layertap-onnx-cfg-');
    mkdirSync(path.join(dir, 'img'));
    copyFileSync(NPY, path.join(dir, 'img', 'not-an-image.npy'));
    const r = await resolveJob(parseJob(job({ source: { uri: path.join(dir, 'img'), type: 'images' }, preprocess: { mean: [0.5], std: [0.25] } })));
    expect(r.preprocess).toEqual({ size: [28, 28], fit: 'cover', layout: 'nchw', channels: 1, mean: [0.5], std: [0.25] });
    expect(r.inputShape).toEqual([1, 28, 28]);
    const e = await configError(job({ source: { uri: path.join(dir, 'img'), type: 'images' }, preprocess: { layout: 'nhwc' } }));
    expect(e.message).toBe("preprocess.layout: 'nhwc' but the model takes 'nchw'");
  });
});
