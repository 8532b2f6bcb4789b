#!/usr/bin/env node
// The strongest simple loop a user writes to embed a folder of JPEGs with an ONNX model: the
// reference of the bench's wall-clock image figure. It uses the libraries directly and nothing of
// layertap, so that its start-up is a plain script's.
//
//   node bench/lib/strong-loop.mjs MODEL.onnx JPEG_DIR OUT.arrow [BATCH] [INTRA_OP_THREADS]
//
// INTRA_OP_THREADS: onnxruntime's intraOpNumThreads; without it the session has no options.
// onnxruntime's default differs by host: one thread per physical core as it counts them, which
// on some virtual machines is 1 for 2 vCPUs (the forward pass then runs on one core).
//
// Per batch of BATCH files (sorted by name): sharp decodes them all at once (Promise.all: libvips
// works on libuv's thread pool), each into NCHW float32 in one shared batch buffer, then
// onnxruntime-node runs the batch with its default session options (intra-op threads: one per
// physical core). Decode and forward alternate; each uses every core while it runs. The `features`
// output of every batch goes into one Arrow IPC file: `id` (file name), `embedding`
// (FixedSizeList<Float32>), the columns layertap writes.
//
// Preprocessing is layertap's for MobileNetV2 at 224x224 with ImageNet's mean and std: EXIF
// orientation, alpha flattened on white, resized to cover 224x224 and cropped at the centre, sRGB
// 8-bit, then (p / 255 - mean[c]) / std[c].
//
// It prints one JSON line ({ rows, dim, file }) and exits; the bench times it from spawn to exit.
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Field, FixedSizeList, Float32, makeData, makeVector, Table, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import ort from 'onnxruntime-node';
import sharp from 'sharp';

const [model, dir, out, batchArg, intraArg] = process.argv.slice(2);
if (!model || !dir || !out) {
  process.stderr.write('usage: node bench/lib/strong-loop.mjs MODEL.onnx JPEG_DIR OUT.arrow [BATCH] [INTRA_OP_THREADS]\n');
  process.exit(2);
}
const BATCH = Number(batchArg ?? 32);
const SIZE = 224;
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
const PLANE = SIZE * SIZE;

/** Decodes one JPEG into `batch` at image slot `slot`, channel-major (NCHW). */
async function decodeInto(file, batch, slot) {
  const { data, info } = await sharp(file)
    .rotate()
    .flatten({ background: '#ffffff' })
    .resize(SIZE, SIZE, { fit: 'cover', position: 'centre' })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const base = slot * 3 * PLANE;
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < PLANE; p++) batch[base + c * PLANE + p] = (data[p * info.channels + c] / 255 - MEAN[c]) / STD[c];
  }
}

const session = await ort.InferenceSession.create(model, intraArg ? { intraOpNumThreads: Number(intraArg) } : undefined);
const inputName = session.inputNames[0];
const files = (await readdir(dir)).filter((f) => /\.jpe?g$/i.test(f)).sort();

const outputs = [];
for (let start = 0; start < files.length; start += BATCH) {
  const chunk = files.slice(start, start + BATCH);
  const batch = new Float32Array(chunk.length * 3 * PLANE);
  await Promise.all(chunk.map((f, i) => decodeInto(path.join(dir, f), batch, i)));
  const result = await session.run({ [inputName]: new ort.Tensor('float32', batch, [chunk.length, 3, SIZE, SIZE]) });
  outputs.push(result.features);
}

const dim = outputs[0]?.dims[1] ?? 0;
const values = new Float32Array(files.length * dim);
let at = 0;
for (const t of outputs) {
  values.set(t.data, at);
  at += t.data.length;
}
const embedding = makeVector(
  makeData({
    type: new FixedSizeList(dim, new Field('item', new Float32(), false)),
    length: files.length,
    nullCount: 0,
    child: makeData({ type: new Float32(), data: values }),
  }),
);
const table = new Table({ id: vectorFromArray(files, new Utf8()), embedding });
await writeFile(out, tableToIPC(table, 'file'));
process.stdout.write(`${JSON.stringify({ rows: table.numRows, dim, file: out })}\n`);
