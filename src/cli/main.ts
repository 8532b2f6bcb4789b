import { Command } from 'commander';
import { VERSION } from '../version.js';
import { EXIT, examples, type SetExit } from './common.js';
import { register as registerLayers } from './commands/layers.js';
import { register as registerModels } from './commands/models.js';
import { register as registerRun } from './commands/run.js';
import { register as registerEnqueue } from './commands/enqueue.js';
import { register as registerWorker } from './commands/worker.js';
import { register as registerStatus } from './commands/status.js';
import { register as registerCancel } from './commands/cancel.js';
import { register as registerFinalize } from './commands/finalize.js';
import { register as registerPlan } from './commands/plan.js';
import { register as registerSchedule } from './commands/schedule.js';
import { register as registerRuns } from './commands/runs.js';
import { register as registerDashboard } from './commands/dashboard.js';
import { register as registerDemoData } from './commands/demo-data.js';
import { register as registerNeighbours } from './commands/neighbours.js';
import { register as registerSearch } from './commands/search.js';
import { register as registerMap } from './commands/map.js';

export { EXIT } from './common.js';

/** Build the command tree; `main` runs it. Exported for tests. */
export function buildProgram(setExit: SetExit): Command {
  const program = new Command('layertap')
    .description('Tap layers of a model over a dataset and write the features as Arrow files')
    .version(VERSION)
    .showHelpAfterError()
    .addHelpText(
      'after',
      `${examples('layertap run config/examples/demo.yaml', 'layertap layers builtin:mobilenet_v2')}\n\n'layertap <command> --help' shows a command's options, their defaults and an example.`,
    )
    // set before the commands are added, so they inherit it: a usage error exits 2, help exits 0
    .exitOverride((e) => {
      process.exit(e.exitCode === 0 ? 0 : EXIT.usage);
    });

  // registration order is the order `layertap --help` lists the commands in
  for (const register of [
    registerLayers,
    registerModels,
    registerPlan,
    registerRun,
    registerEnqueue,
    registerWorker,
    registerStatus,
    registerCancel,
    registerFinalize,
    registerSchedule,
    registerRuns,
    registerNeighbours,
    registerSearch,
    registerMap,
    registerDashboard,
    registerDemoData,
  ]) {
    register(program, setExit);
  }
  return program;
}

/** CLI entry point. */
export async function main(argv: string[]): Promise<void> {
  // On Node < 22 the AWS SDK prints a 7-line NodeVersionSupportWarning in every process (and
  // thread) that makes an S3 client: nothing layertap or its user can act on short of a Node
  // upgrade, which the README says. Only that warning is turned off, through the SDK's own switch,
  // and only when the environment does not set it; threads and child processes inherit it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let code: number = EXIT.ok;
  const program = buildProgram((c) => (code = c));
  await program.parseAsync(argv);
  // worker threads and sockets are closed by now; exit explicitly so nothing lingers
  process.exit(code);
}
