// One scale measurement in a process of its own, so that its peak RSS is its own:
//   node scale-child.mjs enqueue <job.json> <redisUrl> <prefix>
//   node scale-child.mjs finalize <runId> <redisUrl> <prefix>
// Prints one JSON object: seconds, peak RSS (MB) and what was measured.
import { readFile } from 'node:fs/promises';
import { dist } from './common.js';

const [what, arg, redisUrl, prefix] = process.argv.slice(2);
const settings = { redisUrl, prefix, allowEviction: true };
const t0 = performance.now();
let out;
if (what === 'enqueue') {
  const { LayertapClient } = await dist('queue/client.js');
  const job = JSON.parse(await readFile(arg, 'utf8'));
  const client = new LayertapClient(settings);
  const rec = await client.enqueue(job);
  await client.close();
  out = { runId: rec.runId, shards: rec.shards, rows: rec.totalRows, status: rec.status };
} else if (what === 'finalize') {
  // what the run job does: read every shard's result from the parent job, write the manifest and record
  const [{ Job, Queue }, { RunSpecStore }, { RunRegistry }, { finalizeRun }, { Redis }] = await Promise.all([
    import('bullmq'),
    dist('queue/run-specs.js'),
    dist('queue/run-registry.js'),
    dist('pipeline/finalize.js'),
    import('ioredis'),
  ]);
  const redis = new Redis(redisUrl);
  const runs = new Queue('runs', { connection: { url: redisUrl }, prefix });
  const job = await Job.fromId(runs, arg);
  const values = await job.getChildrenValues();
  const spec = await new RunSpecStore(redis, prefix).get(arg);
  const res = await finalizeRun(spec, { results: Object.values(values), failures: [] }, new RunRegistry(redis, prefix));
  await runs.close();
  redis.disconnect();
  out = res;
} else {
  throw new Error(`unknown measurement '${what}'`);
}
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(`${JSON.stringify({ ...out, seconds, peakRssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
process.exit(0);
