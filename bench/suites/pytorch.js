// PyTorch peer: the same image job done with register_forward_hook in a batch loop (bench/pytorch_peer.py).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { jpegFolder, ONNX_MODEL, ROOT } from '../lib/common.js';
import { InProcessPipeline } from '../lib/pipeline.js';
import { loadProbe, ratioRow, throughput } from '../lib/result.js';
import { imageCount, imageJob, imageModels } from './images.js';

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function peer(dir, ctx) {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      [path.join(ROOT, 'bench', 'pytorch_peer.py'), dir, '--batch', '32', '--threads', String(ctx.cores), '--runs', String(ctx.runs)],
      { maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err && !stdout) return reject(new Error(`pytorch_peer.py failed: ${stderr || err.message}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop()));
        } catch {
          reject(new Error(`pytorch_peer.py printed no JSON: ${stdout} ${stderr}`));
        }
      },
    );
  });
}

export async function pytorchSuite(ctx) {
  const m = imageModels(ctx).find((x) => x.key === 'onnx');
  if (!m) {
    return [{ suite: 'pytorch', name: 'PyTorch peer', ratio: null, goal: '>= 5', pass: false, skipped: true, note: `no ${ONNX_MODEL}` }];
  }
  const dir = await jpegFolder(await imageCount(ctx));
  const probe = loadProbe();
  ctx.log(`  PyTorch (${PYTHON}): MobileNetV2 with a forward hook, batch 32, ${ctx.cores} threads`);
  const torch = await peer(dir, ctx);
  if (torch.skipped) {
    ctx.log(`  ${torch.skipped}`);
    return [{ suite: 'pytorch', name: 'PyTorch peer', ratio: null, goal: '>= 5', pass: false, skipped: true, note: torch.skipped }];
  }
  ctx.log(`    PyTorch ${torch.torch}: ${torch.rowsPerSecond.toFixed(1)} rows/s (runs ${torch.runs.map((s) => s.toFixed(2)).join(', ')} s)`);
  const sink = path.join(ctx.tmp, 'out-peer');
  const config = imageJob('bench-peer', dir, m, sink);
  const pipe = await InProcessPipeline.start(ctx.settings('peer'), { threads: ctx.cores });
  const runs = [];
  let backend = '';
  try {
    for (let run = 0; run <= ctx.runs; run++) {
      const r = await pipe.run(config, ctx.tmp);
      backend = r.summary.backend ?? backend;
      if (run > 0) runs.push(r.seconds);
      ctx.log(`    layertap run ${run}${run === 0 ? ' (warm-up)' : ''}: ${(r.rows / r.seconds).toFixed(1)} rows/s`);
    }
  } finally {
    await pipe.close();
  }
  return [
    ratioRow({
      suite: 'pytorch',
      name: 'PyTorch peer (images, MobileNetV2)',
      ours: throughput(torch.rows, runs, { backend, threads: ctx.cores, what: 'layertap run, ONNX, folder of JPEGs -> Arrow' }),
      ref: { rowsPerSecond: torch.rowsPerSecond, backend: `torch ${torch.torch} (CPU)`, threads: torch.threads, runs: torch.runs, what: torch.what },
      goal: 5,
      probe,
    }),
  ];
}
