import type { Command } from 'commander';
import { err, examples, EXIT, fail, out, withClient, type SetExit } from '../common.js';

/** `layertap cancel <run-id>`: stop a run; pending shards are dropped, active ones finish. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('cancel <run-id>')
    .description('cancel a run: pending shards are removed, active ones finish; the run ends cancelled with _CANCELLED')
    .addHelpText('after', examples('layertap cancel 20261206T221718-0ecd2b'))
    .option('--json', 'print one JSON object on stdout')
    .action(async (runId: string, o: { json?: boolean }) => {
      try {
        await withClient(
          async (client) => {
            const before = await client.registry.get(runId);
            const rec = await client.cancel(runId);
            if (!rec) throw new Error(`no run with id '${runId}'`);
            // a run that ended before the cancel keeps its status: nothing was cancelled
            const already = before?.status === 'cancelled' || before?.status === 'cancelling';
            const cancelled = !already && (rec.status === 'cancelling' || rec.status === 'cancelled');
            if (o.json) out(JSON.stringify({ runId, status: rec.status, cancelled: cancelled || already, output: { uri: rec.outputUri } }));
            if (cancelled && rec.status === 'cancelled') err(`run ${runId} cancelled; ${rec.outputUri} has _CANCELLED`);
            else if (cancelled && before?.status === 'planning')
              err(`run ${runId} cancelling: its enqueuer stops planning at the next shard; then ${rec.outputUri} gets _CANCELLED`);
            else if (cancelled) err(`run ${runId} cancelling: pending shards removed; active shards finish, then ${rec.outputUri} gets _CANCELLED`);
            else if (already) err(`run ${runId} was already ${before?.status}`);
            else {
              err(`layertap: run ${runId} is already ${rec.status}; nothing to cancel`);
              setExit(EXIT.failed);
            }
            if (!o.json) out(`${runId} ${rec.status}`);
          },
          { writes: true },
        );
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
}
