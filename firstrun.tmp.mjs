import * as ort from 'onnxruntime-node';
const s = await ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: 1, enableMemPattern: false, graphOptimizationLevel: 'all' });
const data = new Float32Array(32 * 3 * 224 * 224); for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 2;
const name = s.inputNames[0], out = s.outputNames[0];
const full = (await s.run({ [name]: new ort.Tensor('float32', data, [32, 3, 224, 224]) }))[out].data;
for (const bs of [16, 8, 4, 1]) {
  let max = 0; const per = 3 * 224 * 224; const dim = full.length / 32;
  for (let r = 0; r < 32; r += bs) {
    const o = (await s.run({ [name]: new ort.Tensor('float32', data.slice(r * per, (r + bs) * per), [bs, 3, 224, 224]) }))[out].data;
    for (let k = 0; k < o.length; k++) max = Math.max(max, Math.abs(o[k] - full[r * dim + k]));
  }
  console.log(bs, 'max abs diff', max);
}
