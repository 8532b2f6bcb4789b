import type { Command } from 'commander';
import type { Cell, Hit } from '../../pipeline/search/nearest.js';
import { SearchInputError } from '../../pipeline/search/errors.js';
import { err, examples, EXIT, fail, out, positiveInt, table, type SetExit } from '../common.js';

/** Longest carried text shown in a table cell. */
const CELL_CHARS = 60;

function cell(v: Cell): string {
  const s = v === null ? '-' : String(v).replace(/\s+/g, ' ');
  return s.length > CELL_CHARS ? `${s.slice(0, CELL_CHARS - 1)}…` : s;
}

/** A hit as JSON: id and score first, then its carried columns (never over those two). */
export function hitJson(h: Hit): Record<string, Cell> {
  return { id: h.id, score: h.score, ...without(h.carried, ['id', 'score']) };
}

/** `cells` without the keys that name something else in the JSON around them. */
export function without(cells: Record<string, Cell>, keys: readonly string[]): Record<string, Cell> {
  return Object.fromEntries(Object.entries(cells).filter(([k]) => !keys.includes(k)));
}

/** The hits as a table: rank, score, id and the carried columns. */
export function printHits(hits: Hit[]): void {
  const carried = [...new Set(hits.flatMap((h) => Object.keys(h.carried)))];
  out(
    table(
      ['#', 'score', 'id', ...carried],
      hits.map((h, i) => [String(i + 1), h.score.toFixed(5), h.id, ...carried.map((c) => cell(h.carried[c] ?? null))]),
    ),
  );
}

/** The exit code for an error of a search command: 2 for bad input (run, id, tap, query), else as `fail` says. */
export function failSearch(e: unknown, json: boolean): number {
  if (e instanceof SearchInputError) {
    if (json) out(JSON.stringify({ error: e.message, ...(e.choices.length ? { choices: e.choices } : {}) }));
    err(`layertap: ${e.message}`);
    return EXIT.usage;
  }
  return fail(e, json);
}

/** Progress of a scan on stderr, when it is a terminal: a line rewritten as part files are read. */
export function scanProgress(): ((read: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (read, total) => {
    const now = Date.now();
    if (read < total && now - last < 200) return;
    last = now;
    process.stderr.write(`\rscanned ${read} of ${total} rows${read >= total ? '\n' : ''}`);
  };
}

/** The run argument's help, shared by the search commands. */
export const RUN_ARG_HELP = "a run's output uri as 'layertap run' prints it (a folder or s3:// URI), or a job file (its newest committed run)";

/** `layertap neighbours <run> <id>`: the rows nearest to one row. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('neighbours <run> <id>')
    .description('the k rows nearest to a row by cosine (exact; the row itself excluded)')
    .addHelpText(
      'after',
      `\n<run> is ${RUN_ARG_HELP}.${examples('layertap neighbours out/demo/9f2c41d07be5a3e1/20261206T221718-0ecd2b cat/001.png -k 5', 'layertap neighbours config/examples/demo.yaml cat/001.png --json')}`,
    )
    .option('-k <n>', 'rows to list', positiveInt('-k'), 10)
    .option('--tap <column>', "the tap column to compare (default: the run's first)")
    .option('--threads <n>', 'threads reading part files (default: the cores)', positiveInt('--threads'))
    .option('--json', 'print one JSON object on stdout')
    .action(async (runArg: string, id: string, o: { k: number; tap?: string; threads?: number; json?: boolean }) => {
      const [{ openRun }, { neighbours }, { ScanPool }] = await Promise.all([
        import('../../pipeline/search/run-ref.js'),
        import('../../pipeline/search/nearest.js'),
        import('../../workers/scan-pool.js'),
      ]);
      let pool: InstanceType<typeof ScanPool> | null = null;
      try {
        const run = await openRun(runArg);
        pool = new ScanPool(o.threads !== undefined ? { threads: o.threads } : {});
        const progress = scanProgress();
        const r = await neighbours(run, id, { pool, k: o.k, ...(o.tap !== undefined ? { tap: o.tap } : {}), ...(progress ? { onProgress: progress } : {}) });
        if (o.json) {
          out(JSON.stringify({ id: r.id, tap: r.tap, ...without(r.carried, ['id', 'tap', 'neighbours']), neighbours: r.neighbours.map(hitJson) }));
        } else {
          out(`${r.neighbours.length} nearest to ${r.id} in '${r.tap}' (run ${run.manifest.runId}, ${run.manifest.rows} rows):`);
          printHits(r.neighbours);
        }
      } catch (e) {
        setExit(failSearch(e, !!o.json));
      } finally {
        await pool?.close();
      }
    });
}
