import type { Command } from 'commander';
import { settingsFromEnv } from '../../queue/connection.js';
import { examples, fail, out, printSummary, type SetExit } from '../common.js';

/** `layertap status <run-id>`: the state of one run. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('status <run-id>')
    .description('state, shards done/failed, rows, errors, output location')
    .addHelpText('after', examples('layertap status 20261206T221718-0ecd2b'))
    .option('--json', 'print one JSON object on stdout')
    .action(async (runId: string, o: { json?: boolean }) => {
      const settings = settingsFromEnv();
      try {
        const [{ checkRedis }, { LayertapClient }] = await Promise.all([import('../../queue/redis-checks.js'), import('../../queue/client.js')]);
        // reading state loses nothing, so only reachability and credentials are checked here
        await checkRedis(settings.redisUrl, { allowEviction: true });
        const client = new LayertapClient(settings);
        try {
          const s = await client.status(runId);
          if (!s) throw new Error(`no run with id '${runId}' (prefix ${settings.prefix})`);
          if (o.json) out(JSON.stringify(s));
          else printSummary(s);
        } finally {
          await client.close();
        }
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
}
