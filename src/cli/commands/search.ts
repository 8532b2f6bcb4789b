import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { SearchInputError } from '../../pipeline/search/errors.js';
import { examples, out, positiveInt, type SetExit } from '../common.js';
import { failSearch, hitJson, printHits, RUN_ARG_HELP, scanProgress } from './neighbours.js';

/** `layertap search <run> --text T | --image F`: the rows nearest to a query embedded with the run's own model. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('search <run>')
    .description("the k rows nearest by cosine to a text or an image, embedded with the run's own model, preprocessing and tap")
    .addHelpText(
      'after',
      `\n<run> is ${RUN_ARG_HELP}.${examples('layertap search config/examples/text.yaml --text "a cat on a mat" -k 5', 'layertap search out/demo/9f2c41d07be5a3e1/20261206T221718-0ecd2b --image cat.jpg --json')}`,
    )
    .option('--text <text>', 'the query, for a run of a text model')
    .option('--image <file>', 'the query, for a run of an image model: an image file')
    .option('-k <n>', 'rows to list', positiveInt('-k'), 10)
    .option('--tap <column>', "the tap column to compare (default: the run's first)")
    .option('--threads <n>', 'threads reading part files (default: the cores)', positiveInt('--threads'))
    .option('--json', 'print one JSON object on stdout')
    .action(async (runArg: string, o: { text?: string; image?: string; k: number; tap?: string; threads?: number; json?: boolean }) => {
      const [{ openRun, pickColumn }, { nearestRows }, { embedQuery, queryJob }, { ScanPool }] = await Promise.all([
        import('../../pipeline/search/run-ref.js'),
        import('../../pipeline/search/nearest.js'),
        import('../../pipeline/search/query.js'),
        import('../../workers/scan-pool.js'),
      ]);
      let pool: InstanceType<typeof ScanPool> | null = null;
      try {
        if ((o.text === undefined) === (o.image === undefined)) throw new SearchInputError('search: give one query, --text "..." or --image FILE');
        const run = await openRun(runArg);
        const tap = pickColumn(run, o.tap);
        const job = await queryJob(run);
        let query: { text: string } | { image: Uint8Array; name: string };
        if (o.image !== undefined) {
          const image = await readFile(o.image).catch((e: Error) => {
            throw new SearchInputError(`--image: cannot read ${o.image}: ${e.message}`);
          });
          query = { image, name: o.image };
        } else {
          query = { text: o.text! };
        }
        const vector = await embedQuery(job, query, tap);
        pool = new ScanPool(o.threads !== undefined ? { threads: o.threads } : {});
        const progress = scanProgress();
        const { hits } = await nearestRows(run, vector, { pool, k: o.k, tap, ...(progress ? { onProgress: progress } : {}) });
        const q = o.image !== undefined ? { image: o.image } : { text: o.text! };
        if (o.json) {
          out(JSON.stringify({ query: q, tap, neighbours: hits[0]!.map(hitJson) }));
        } else {
          out(
            `${hits[0]!.length} nearest to ${o.image !== undefined ? o.image : JSON.stringify(o.text)} in '${tap}' (run ${run.manifest.runId}, ${run.manifest.rows} rows):`,
          );
          printHits(hits[0]!);
        }
      } catch (e) {
        setExit(failSearch(e, !!o.json));
      } finally {
        await pool?.close();
      }
    });
}
