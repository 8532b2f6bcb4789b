import type { Command } from 'commander';
import { JobConfigError } from '../../config/errors.js';
import { err, examples, fail, out, positiveInt, table, withClient, type SetExit } from '../common.js';

function describeTiming(s: { cron: string | null; tz: string | null; every: number | null }): string {
  if (s.cron) return `cron "${s.cron}"${s.tz ? ` (${s.tz})` : ''}`;
  return `every ${s.every} ms`;
}

/** `layertap schedule add|list|remove`: schedules that enqueue a job again. */
export function register(program: Command, setExit: SetExit): void {
  const schedule = program
    .command('schedule')
    .description('cron or interval schedules that enqueue a job again (incremental by default)')
    .addHelpText('after', examples('layertap schedule add config/examples/demo.yaml --cron "0 3 * * *" --tz Europe/Berlin --id nightly-demo'));
  schedule
    .command('add <job-file>')
    .description('add or replace a schedule (same id: replaced, so several hosts may add it); the job file is copied now: add again after editing it')
    .addHelpText('after', examples('layertap schedule add config/examples/demo.yaml --cron "0 3 * * *" --tz Europe/Berlin --id nightly-demo'))
    .option('--cron <expr>', 'cron pattern, e.g. "0 3 * * *"')
    .option('--tz <zone>', 'time zone of the cron pattern, e.g. Europe/Berlin')
    .option('--every <ms>', 'fixed interval in milliseconds', positiveInt('--every'))
    .option('--id <id>', 'schedule id (default: the job name)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (file: string, o: { cron?: string; tz?: string; every?: number; id?: string; json?: boolean }) => {
      try {
        if (!!o.cron === !!o.every) throw new JobConfigError('schedule add: give exactly one of --cron EXPR or --every MS');
        if (o.tz && !o.cron) throw new JobConfigError('schedule add: --tz goes with --cron');
        const [{ loadJobFile }, { resolveJob }, { ScheduleManager }] = await Promise.all([
          import('../../config/load.js'),
          import('../../pipeline/plan.js'),
          import('../../queue/schedules.js'),
        ]);
        // its paths are absolute (read against the job file's folder), so that it means the same on any host and at any time
        const job = await loadJobFile(file);
        // validate against the model and source now, so a bad schedule fails here and not at 3 am
        await resolveJob(job);
        await withClient(
          async (client) => {
            const mgr = new ScheduleManager(client.settings, client.redis);
            try {
              const info = await mgr.add(o.id ?? job.name, job, o.cron ? { cron: o.cron, ...(o.tz ? { tz: o.tz } : {}) } : { every: o.every! });
              if (o.json) out(JSON.stringify(info));
              else out(`schedule ${info.id}: ${describeTiming(info)}, next ${info.next ? new Date(info.next).toISOString() : '-'}`);
            } finally {
              await mgr.close();
            }
          },
          { writes: true },
        );
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
  schedule
    .command('list')
    .description('schedules with their next run time and last run (its status, and its error when it failed)')
    .addHelpText('after', examples('layertap schedule list'))
    .option('--json', 'print one JSON object on stdout')
    .action(async (o: { json?: boolean }) => {
      try {
        const { ScheduleManager } = await import('../../queue/schedules.js');
        await withClient(async (client) => {
          const mgr = new ScheduleManager(client.settings, client.redis);
          try {
            const list = await mgr.list(client);
            if (o.json) {
              out(JSON.stringify({ schedules: list }));
              return;
            }
            out(
              table(
                ['id', 'job', 'when', 'next', 'last run', 'status', 'error'],
                list.map((s) => [
                  s.id,
                  s.name,
                  describeTiming(s),
                  s.next ? new Date(s.next).toISOString() : '-',
                  s.lastRun?.runId ?? '-',
                  s.lastRun?.status ?? '-',
                  s.lastRun?.error ?? '-',
                ]),
              ),
            );
          } finally {
            await mgr.close();
          }
        });
      } catch (e) {
        setExit(fail(e, !!o.json));
      }
    });
  schedule
    .command('remove <id>')
    .description('remove a schedule and its ticks not yet started (runs already enqueued go on)')
    .addHelpText('after', examples('layertap schedule remove nightly-demo'))
    .action(async (id: string) => {
      try {
        const { ScheduleManager } = await import('../../queue/schedules.js');
        await withClient(async (client) => {
          const mgr = new ScheduleManager(client.settings, client.redis);
          try {
            if (!(await mgr.remove(id))) throw new Error(`no schedule with id '${id}'`);
            err(`removed schedule ${id}`);
          } finally {
            await mgr.close();
          }
        });
      } catch (e) {
        setExit(fail(e, false));
      }
    });
}
