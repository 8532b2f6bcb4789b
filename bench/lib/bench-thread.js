// Worker-thread side of the reference loops the pipeline is compared with. Each thread loads
// the model with layertap's own loadRunner (same runtime, backend, session options), prepares
// its inputs, says 'ready', then times the loop named in each message it gets.
//
// mode 'bare':   a bare forward loop over this thread's slice of a .npy (already in memory)
// mode 'single': one thread doing everything for images: the per-core decode and forward costs
//                that make the ideal bound, and the loop a user writes by hand
import { readFile } from 'node:fs/promises';
import { openSync, readSync, closeSync } from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const { dist } = workerData;
const { loadRunner, singleFloatInput } = await import(path.join(dist, 'models', 'index.js'));
const { decodeImage, decodeImageInto } = await import(path.join(dist, 'preprocess', 'image-decode.js'));

const per = (shape) => shape.reduce((a, b) => a * b, 1);

/** Rows [start, start + count) of a float32 .npy, as batches of `batch` rows. */
function npyBatches(file, dataOffset, rowLen, start, count, batch) {
  const fd = openSync(file, 'r');
  try {
    const out = [];
    for (let s = 0; s < count; s += batch) {
      const rows = Math.min(batch, count - s);
      const data = new Float32Array(rows * rowLen);
      readSync(fd, new Uint8Array(data.buffer), 0, data.byteLength, dataOffset + (start + s) * rowLen * 4);
      out.push({ data, rows });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

async function bare() {
  const { spec, npy, start, count, batch } = workerData;
  const runner = await loadRunner(spec);
  const batches = npyBatches(npy.file, npy.dataOffset, per(spec.inputShape), start, count, batch);
  // one untimed pass: first-run costs (allocations, kernel selection) are not throughput
  for (const b of batches) await runner.run(singleFloatInput(runner, b.data, spec.inputShape));
  return {
    backend: runner.backend,
    loops: {
      forward: async () => {
        for (const b of batches) await runner.run(singleFloatInput(runner, b.data, spec.inputShape));
        return count;
      },
    },
    dispose: () => runner.dispose(),
  };
}

async function single() {
  const { spec, files, batch, forwardRows, cores, onnx } = workerData;
  const pre = spec.preprocess;
  const len = per(spec.inputShape);
  // one core: onnxruntime with one intra-op thread. "defaults": what the runtime picks for one session (all cores)
  const one = await loadRunner({ ...spec, ...(onnx ? { intraOpThreads: 1 } : {}) });
  const all = onnx ? await loadRunner({ ...spec, intraOpThreads: cores }) : one;
  const bytes = await Promise.all(files.map((f) => readFile(f).then((b) => new Uint8Array(b))));
  // decoded batches for the forward-only timing
  const decoded = [];
  for (let s = 0; s < Math.min(forwardRows, files.length); s += batch) {
    const rows = Math.min(batch, forwardRows - s, files.length - s);
    const data = new Float32Array(rows * len);
    for (let i = 0; i < rows; i++) await decodeImageInto(bytes[s + i], pre, data, i * len);
    decoded.push({ data, rows });
  }
  const forwardCount = decoded.reduce((n, b) => n + b.rows, 0);
  for (const b of decoded) await one.run(singleFloatInput(one, b.data, spec.inputShape));
  if (all !== one) for (const b of decoded) await all.run(singleFloatInput(all, b.data, spec.inputShape));
  const handLoop = async (runner, parallelDecode) => {
    for (let s = 0; s < files.length; s += batch) {
      const chunk = files.slice(s, s + batch);
      const data = new Float32Array(chunk.length * len);
      if (parallelDecode) {
        const raw = await Promise.all(chunk.map((f) => readFile(f)));
        await Promise.all(raw.map((b, i) => decodeImageInto(b, pre, data, i * len)));
      } else {
        for (const [i, f] of chunk.entries()) await decodeImageInto(await readFile(f), pre, data, i * len);
      }
      await runner.run(singleFloatInput(runner, data, spec.inputShape));
    }
    return files.length;
  };
  return {
    backend: one.backend,
    loops: {
      // decode + resize + normalise, one image at a time: the per-core decode cost
      decode: async () => {
        for (const b of bytes) await decodeImage(b, pre);
        return bytes.length;
      },
      // forward only, decoded batches, one core: the per-core forward cost
      forward: async () => {
        for (const b of decoded) await one.run(singleFloatInput(one, b.data, spec.inputShape));
        return forwardCount;
      },
      // the loop written by hand in one thread: read and decode a batch one image at a time, then run it
      hand: () => handLoop(one, false),
      // the same loop with each library's own parallelism: decodes of a batch in flight at once
      // (sharp on libuv's threads), onnxruntime with one intra-op thread per core
      handDefaults: () => handLoop(all, true),
    },
    dispose: async () => {
      await one.dispose();
      if (all !== one) await all.dispose();
    },
  };
}

const state = await (workerData.mode === 'bare' ? bare() : single());
parentPort.postMessage({ type: 'ready', backend: state.backend });
parentPort.on('message', async (msg) => {
  try {
    if (msg.type === 'exit') {
      await state.dispose();
      parentPort.postMessage({ type: 'bye' });
      return;
    }
    const loop = state.loops[msg.loop];
    if (!loop) throw new Error(`unknown loop ${msg.loop}`);
    const t0 = performance.now();
    const rows = await loop();
    parentPort.postMessage({ type: 'done', ms: performance.now() - t0, rows, t0: performance.timeOrigin + t0 });
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: err.stack ?? String(err) });
  }
});
