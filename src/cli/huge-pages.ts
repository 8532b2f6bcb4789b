// Transparent huge pages for the commands that run models, on Linux with glibc.
//
// onnxruntime's arenas, V8's array buffers and libvips' images all come from glibc's malloc. Each
// 4 KB page is zeroed by the kernel on first touch, and on virtual machines a page fault costs
// 10-15 us: an int8 text run of 4000 rows took 740 000 of them (6.5 s of system time) on the
// bench host. With `glibc.malloc.hugetlb=1` malloc asks for huge pages (madvise), 2 MB a fault:
// 160 000 faults, the whole process 28.3-29.2 s instead of 32.5-33.7 (docs/performance.md).
// The setting is read by glibc when the process starts, so the command starts itself again with
// it (process.execve: same process id, same arguments; Node 22.15 and later). On Node 20, or to
// choose for yourself, set GLIBC_TUNABLES before starting layertap; LAYERTAP_HUGE_PAGES=0 turns
// this off.

/** Commands that load a model into threads: a run, a worker, and the int8 price of enqueue and schedules. */
export const MODEL_COMMANDS: ReadonlySet<string> = new Set(['run', 'worker', 'enqueue', 'schedule']);

const TUNABLE = 'glibc.malloc.hugetlb';

/** Whether argv (process.argv) names a command of {@link MODEL_COMMANDS}: its first word after the script. */
function isModelCommand(argv: readonly string[]): boolean {
  const command = argv.slice(2).find((a) => !a.startsWith('-'));
  return command !== undefined && MODEL_COMMANDS.has(command);
}

/** What {@link hugePagesEnv} decides from. */
export interface HugePagesContext {
  /** process.argv */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  platform: string;
  /** the glibc the process runs on (process.report's glibcVersionRuntime), undefined for none (musl, macOS) */
  glibc: string | undefined;
  /** whether process.execve exists */
  canExec: boolean;
}

/**
 * The environment to start the command again with, or null to go on as it is: not Linux with
 * glibc, no process.execve, not a model command, switched off, or GLIBC_TUNABLES already
 * setting malloc's huge pages (either way: the user's value stands, and a started-again process
 * does not start again). Other tunables the user set are kept.
 */
export function hugePagesEnv(ctx: HugePagesContext): Record<string, string> | null {
  if (ctx.platform !== 'linux' || ctx.glibc === undefined || !ctx.canExec) return null;
  if (ctx.env.LAYERTAP_HUGE_PAGES === '0') return null;
  if (!isModelCommand(ctx.argv)) return null;
  const tunables = ctx.env.GLIBC_TUNABLES ?? '';
  if (tunables.split(':').some((t) => t.split('=')[0] === TUNABLE)) return null;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.env)) if (v !== undefined) env[k] = v;
  env.GLIBC_TUNABLES = tunables === '' ? `${TUNABLE}=1` : `${tunables}:${TUNABLE}=1`;
  return env;
}

/** The glibc version this process runs on, from its diagnostic report's header. */
function glibcVersion(): string | undefined {
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    return header?.glibcVersionRuntime;
  } catch {
    return undefined;
  }
}

/**
 * Start this command again with malloc's huge pages when {@link hugePagesEnv} says so; returns
 * when it does not (or when starting again fails: the command runs as it is).
 */
export function startWithHugePages(argv: readonly string[] = process.argv): void {
  const execve = (process as { execve?: (file: string, args: string[], env: Record<string, string>) => never }).execve;
  // cheap checks first: the report is only asked for on Linux, for a model command
  if (process.platform !== 'linux' || typeof execve !== 'function' || !isModelCommand(argv)) return;
  const env = hugePagesEnv({ argv, env: process.env, platform: process.platform, glibc: glibcVersion(), canExec: true });
  if (env === null) return;
  try {
    execve.call(process, process.execPath, [process.execPath, ...process.execArgv, ...argv.slice(1)], env);
  } catch {
    // not started again: the command runs with 4 KB pages
  }
}
