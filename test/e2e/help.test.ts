import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { runCli } from '../helpers/cli.js';

/** Every command path of the CLI (`schedule add` ...), from the program itself, so a new command is covered. */
function commandPaths(): Array<{ path: string[]; parent: boolean }> {
  const paths: Array<{ path: string[]; parent: boolean }> = [];
  const walk = (cmd: ReturnType<typeof buildProgram>, prefix: string[]) => {
    for (const sub of cmd.commands) {
      const path = [...prefix, sub.name()];
      paths.push({ path, parent: sub.commands.length > 0 });
      walk(sub, path);
    }
  };
  walk(
    buildProgram(() => undefined),
    [],
  );
  return paths;
}

// Help as git and docker give it: each option's default, and a command line to start from.
describe('layertap <command> --help', () => {
  it('every command ends its help with an example of itself, using only options it has', async () => {
    const paths = commandPaths();
    expect(paths.map((p) => p.path.join(' '))).toContain('schedule add');
    const missing: string[] = [];
    for (const { path, parent } of paths) {
      const r = await runCli([...path, '--help']);
      expect(r.code, r.stderr).toBe(0);
      const [, after] = r.stdout.split(/\nExamples?:\n/);
      const lines = (after ?? '').split('\n').filter((l) => l.startsWith('  $ '));
      const own = lines.filter((l) => new RegExp(`(^|\\s)layertap ${path.join(' ')}(\\s|$)`).test(l.slice(4)));
      if (own.length === 0) missing.push(path.join(' '));
      // a parent's example shows one of its subcommands, whose help has the options
      for (const l of parent ? [] : own) {
        for (const flag of l.match(/\s(--[a-z-]+)/g) ?? []) expect(r.stdout, `${l}: ${flag.trim()}`).toContain(`  ${flag.trim()} `);
      }
    }
    expect(missing).toEqual([]);
  }, 60_000);

  it('shows the defaults of the options that have one', async () => {
    // commander pads and wraps the columns to the widest option: compare words, not spacing
    const help = async (...args: string[]) => (await runCli([...args, '--help'])).stdout.replace(/\s+/g, ' ');
    const run = await help('run');
    expect(run).toContain(' --workers <n> shard jobs processed at once (default 2) ');
    expect(run).toContain(' --threads <n> model threads in the pool (default: cores) ');
    expect(await help('worker')).toContain(' --concurrency <n> shard jobs at once (default 2) ');
    expect(await help('plan')).toContain(' --workers <list> worker counts to estimate the duration for (default 1,2,4,8,16,32,64) ');
    expect(await help('demo-data')).toContain(' dir folder to write them to (default: "data/demo") ');
  });

  it('the top-level help names the first commands to try and where the rest is', async () => {
    const r = await runCli(['--help']);
    expect(r.stdout).toContain(
      [
        'Examples:',
        '  $ layertap run config/examples/demo.yaml',
        '  $ layertap layers builtin:mobilenet_v2',
        '',
        "'layertap <command> --help' shows a command's options, their defaults and an example.",
      ].join('\n'),
    );
  });
});
