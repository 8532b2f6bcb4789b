import type { Command } from 'commander';
import { EXIT, examples, fail, out, printSummary, withClient, type SetExit } from '../common.js';

/** `layertap finalize <run-id>`: finish a run that could not be finalized, once its storage is back. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('finalize <run-id>')
    .description('finish a run that ended failed because its manifest could not be written (storage down): write it now')
    .option('--json', 'print one JSON summary on stdout')
    .addHelpText('after', examples('layertap finalize 20261127T061502-3fa9c1'))
    .action(async (runId: string, o: { json?: boolean }) => {
      try {
        await withClient(
          async (client) => {
            await client.finalize(runId);
            const s = await client.status(runId);
            if (!s) throw new Error(`no run with id '${runId}'`);
            if (o.json) out(JSON.stringify(s));
            else printSummary(s);
            setExit(s.status === 'committed' ? EXIT.ok : s.status === 'partial' ? EXIT.partial : EXIT.failed);
          },
          { writes: true },
        );
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
}
