import type { Command } from 'commander';
import { rebuildRegistry } from '../../queue/registry-rebuild.js';
import { err, fail, out, positiveInt, table, withClient, type SetExit } from '../common.js';

/** `layertap runs`: the run registry, optionally restored from the sink's manifests first. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('runs')
    .description('the run registry: id, fingerprint, status, rows, errors, start, duration, trigger')
    .option('--name <name>', 'only runs of this dataset')
    .option('--rebuild <sink-uri>', 'first restore records from the manifests under this sink (after Redis was wiped)')
    .option('--limit <n>', 'newest N runs', positiveInt('--limit'), 50)
    .option('--json', 'print one JSON object on stdout')
    .action(async (o: { name?: string; rebuild?: string; limit: number; json?: boolean }) => {
      try {
        await withClient(async (client) => {
          if (o.rebuild) {
            const n = await rebuildRegistry(o.rebuild, client.registry, o.name ? { name: o.name } : {});
            err(`restored ${n} run record(s) from ${o.rebuild}`);
          }
          const runs = (await client.registry.list(o.name ? 10_000 : o.limit)).filter((r) => !o.name || r.name === o.name).slice(0, o.limit);
          if (o.json) {
            out(JSON.stringify({ runs }));
            return;
          }
          out(
            table(
              ['run', 'name', 'fingerprint', 'status', 'rows', 'errors', 'started', 'seconds', 'trigger'],
              runs.map((r) => [
                r.runId,
                r.name,
                r.fingerprint,
                r.status,
                String(r.rows),
                String(r.errorRows),
                new Date(r.createdAt).toISOString(),
                r.finishedAt ? ((r.finishedAt - r.createdAt) / 1000).toFixed(1) : '-',
                r.trigger,
              ]),
            ),
          );
        });
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
}
