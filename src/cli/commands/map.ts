import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { err, examples, out, positiveInt, type SetExit } from '../common.js';
import { failSearch, RUN_ARG_HELP } from './neighbours.js';

/** `layertap map <run>`: a 2-D map of a run's rows with their neighbours, as Parquet that embedding-atlas opens. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('map <run>')
    .description(
      "a 2-D map (PCA or UMAP) of a run's rows with each point's nearest neighbours, written as Parquet: id, x, y, neighbors and the carried columns",
    )
    .addHelpText(
      'after',
      `\n<run> is ${RUN_ARG_HELP}.\nOpen the file with: embedding-atlas FILE.parquet --x x --y y --neighbors neighbors${examples(
        'layertap map config/examples/text.yaml --tap encoder_layer_3 --out text-map.parquet',
        'layertap map out/demo/9f2c41d07be5a3e1/20261206T221718-0ecd2b --method umap',
      )}`,
    )
    .option('--tap <column>', "the tap column to map (default: the run's first)")
    .addOption(new Option('--method <method>', 'how points are placed').choices(['pca', 'umap']).default('pca'))
    .option('--out <file>', 'the Parquet file to write (default: <runId>-<tap>-<method>.parquet here)')
    .option('--points <n>', 'rows placed; a larger run is sampled uniformly', positiveInt('--points'), 100_000)
    .option('--neighbors <k>', 'neighbours listed per point', positiveInt('--neighbors'), 10)
    .option('--threads <n>', 'threads reading part files (default: the cores)', positiveInt('--threads'))
    .option('--json', 'print one JSON object on stdout')
    .action(
      async (
        runArg: string,
        o: { tap?: string; method: 'pca' | 'umap'; out?: string; points: number; neighbors: number; threads?: number; json?: boolean },
      ) => {
        const [{ openRun }, { mapRun, mapParquet }, { ScanPool }] = await Promise.all([
          import('../../pipeline/search/run-ref.js'),
          import('../../pipeline/search/map.js'),
          import('../../workers/scan-pool.js'),
        ]);
        let pool: InstanceType<typeof ScanPool> | null = null;
        const t0 = Date.now();
        try {
          const run = await openRun(runArg);
          pool = new ScanPool(o.threads !== undefined ? { threads: o.threads } : {});
          const map = await mapRun(run, {
            pool,
            method: o.method,
            maxPoints: o.points,
            neighbors: o.neighbors,
            ...(o.tap !== undefined ? { tap: o.tap } : {}),
            onStage: (s) => err(`map: ${s}`),
          });
          const file = path.resolve(o.out ?? `${map.runId}-${map.tap}-${map.method}.parquet`);
          await writeFile(file, await mapParquet(map));
          const seconds = (Date.now() - t0) / 1000;
          if (o.json) {
            out(
              JSON.stringify({
                out: file,
                runId: map.runId,
                tap: map.tap,
                method: map.method,
                points: map.ids.length,
                rows: map.rows,
                neighbors: map.neighbors.k,
                seconds,
              }),
            );
          } else {
            out(`wrote ${map.ids.length} points (of ${map.rows} rows) of '${map.tap}' by ${map.method} to ${file} in ${seconds.toFixed(1)} s`);
            out(`open it with: embedding-atlas ${file} --x x --y y --neighbors neighbors`);
          }
        } catch (e) {
          setExit(failSearch(e, !!o.json));
        } finally {
          await pool?.close();
        }
      },
    );
}
