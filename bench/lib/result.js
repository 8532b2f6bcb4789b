// One line of the results table.
import { load1, median, spread } from './common.js';

/**
 * A measured ratio against its goal. `ours` and `ref` are { rowsPerSecond, runs: [seconds...] }
 * plus whatever describes them (backend, threads, what the reference is).
 */
export function ratioRow({ suite, name, ours, ref, goal, higherIsBetter = true, note, loadBefore }) {
  const value = ours.rowsPerSecond / ref.rowsPerSecond;
  const pass = higherIsBetter ? value >= goal : value <= goal;
  return {
    suite,
    name,
    ratio: value,
    goal: `${higherIsBetter ? '>=' : '<='} ${goal}`,
    pass,
    ours,
    ref,
    note: note ?? '',
    load: { before: loadBefore ?? null, after: load1() },
  };
}

/** { rowsPerSecond, seconds (median), runs, spread } of timed runs over `rows` rows. */
export function throughput(rows, runs, extra = {}) {
  const s = median(runs);
  return { rowsPerSecond: rows / s, seconds: s, runs, spread: Number(spread(runs).toFixed(3)), rows, ...extra };
}
