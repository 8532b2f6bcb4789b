// How the property tests run: in `npm test` with a fixed seed and a few runs each, so that the
// suite is quick and a failure replays; `npm run test:props` with many more runs and a fresh
// seed, both taken from the environment and printed.
import fc from 'fast-check';

/** The seed of `npm test`: fixed, so that every run of the suite tries the same cases. */
export const DEFAULT_SEED = 20261207;

/** What one property is allowed in `npm test`. */
export interface PropsBudget {
  /** cases tried */
  numRuns: number;
  /** after this many milliseconds no new case starts (shrinking included): a bound on a slow host, not a target */
  budgetMs: number;
}

/** A property's settings once the environment is read. */
export interface PropsRun<T> {
  seed: number;
  numRuns: number;
  /** what fc.assert takes: seed, runs, replay path, the time bound and a one-line summary at the end (prints the seed) */
  parameters(): fc.Parameters<T>;
  /** the vitest timeout of the test that runs the property */
  timeoutMs: number;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got '${v}'`);
  return n;
}

/**
 * The seed: LAYERTAP_PROPS_SEED (an integer, or `random` for a new one each time), else
 * {@link DEFAULT_SEED}. Read once per test process, so that every property of a file shares it.
 */
export const PROPS_SEED: number =
  process.env.LAYERTAP_PROPS_SEED === 'random' ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : (envInt('LAYERTAP_PROPS_SEED') ?? DEFAULT_SEED);

/** True under `npm run test:props` (LAYERTAP_PROPS_RUNS set): many runs, no time bound but the one given. */
export const PROPS_LONG = envInt('LAYERTAP_PROPS_RUNS') !== undefined;

/**
 * Settings of the property `label`: `budget` in `npm test`; LAYERTAP_PROPS_RUNS runs (and
 * LAYERTAP_PROPS_BUDGET_MS, default one hour) when set. LAYERTAP_PROPS_PATH replays one
 * counterexample (with its seed; pick the property with `vitest -t`). Prints the seed first and
 * the runs made last, so that a log says how to replay what it shows.
 */
export function propsRun<T>(label: string, budget: PropsBudget): PropsRun<T> {
  const numRuns = envInt('LAYERTAP_PROPS_RUNS') ?? budget.numRuns;
  const budgetMs = PROPS_LONG ? (envInt('LAYERTAP_PROPS_BUDGET_MS') ?? 3_600_000) : budget.budgetMs;
  const path = process.env.LAYERTAP_PROPS_PATH;
  const seed = PROPS_SEED;
  return {
    seed,
    numRuns,
    timeoutMs: budgetMs + 30_000,
    parameters: () => {
      const started = Date.now();
      console.log(`[props] ${label}: seed ${seed}, ${numRuns} runs (replay: LAYERTAP_PROPS_SEED=${seed})`);
      const summary: fc.Plugin<T> = () => ({
        onAllRunsComplete: (d) => {
          const s = ((Date.now() - started) / 1000).toFixed(1);
          const how = d.failed ? `failed (counterexample below)` : d.interrupted ? `stopped at the time bound of ${budgetMs} ms` : 'passed';
          console.log(`[props] ${label}: ${d.numRuns} runs in ${s} s, ${how}; seed ${d.seed}`);
        },
      });
      return {
        seed,
        numRuns,
        ...(path ? { path } : {}),
        // the error of the failing case (it names the configuration) in the report, not only as its cause
        includeErrorInReport: true,
        plugins: [fc.interruptAfterTimeLimit(budgetMs), summary],
      };
    },
  };
}
