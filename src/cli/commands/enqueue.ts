import type { Command } from 'commander';
import { settingsFromEnv } from '../../queue/connection.js';
import { ALLOW_EVICTION_HELP, err, examples, fail, out, type SetExit } from '../common.js';

/** `layertap enqueue <job-file>`: validate a job and enqueue it for the workers. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('enqueue <job-file>')
    .description('validate and enqueue a job; prints the run id (workers do the work)')
    .addHelpText('after', examples('REDIS_URL=redis://redis.internal:6379 layertap enqueue config/examples/demo.yaml --json'))
    .option('--allow-eviction', ALLOW_EVICTION_HELP)
    .option('--json', 'print one JSON object on stdout')
    .action(async (file: string, o: { allowEviction?: boolean; json?: boolean }) => {
      try {
        const [{ loadJobFile }, { resolveJob }, { checkRedis }, { LayertapClient }] = await Promise.all([
          import('../../config/load.js'),
          import('../../pipeline/plan.js'),
          import('../../queue/redis-checks.js'),
          import('../../queue/client.js'),
        ]);
        const resolved = await resolveJob(await loadJobFile(file));
        if (resolved.model.precision === 'int8') {
          // the price of int8 on the first rows, measured here before the run is queued
          const { priceInt8 } = await import('../../pipeline/precision.js');
          await priceInt8(resolved, { onFigure: (line) => err(line) });
        }
        const settings = settingsFromEnv();
        if (o.allowEviction) settings.allowEviction = true;
        const check = await checkRedis(settings.redisUrl, { allowEviction: settings.allowEviction ?? false });
        for (const w of check.warnings) err(`layertap: warning: ${w}`);
        const client = new LayertapClient(settings);
        try {
          const rec = await client.enqueue(resolved);
          if (o.json)
            out(
              JSON.stringify({
                runId: rec.runId,
                status: rec.status,
                shards: rec.shards,
                rows: rec.totalRows,
                fingerprint: rec.fingerprint,
                deduplicated: rec.deduplicated ?? false,
                output: { uri: rec.outputUri },
              }),
            );
          else out(rec.runId);
          if (rec.deduplicated) err(`an identical run is already ${rec.status}: ${rec.runId} (nothing new enqueued)`);
          else err(`enqueued run ${rec.runId}: ${rec.totalRows} rows in ${rec.shards} shard(s) -> ${rec.outputUri}`);
        } finally {
          await client.close();
        }
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
}
