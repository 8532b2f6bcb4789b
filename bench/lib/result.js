// One line of the results table.
import { load1, median, otherLoad, spread } from './common.js';

/** Starts measuring the machine's load for one figure; `done()` gives { loadavg, otherCores }. */
export function loadProbe() {
  const before = load1();
  const other = otherLoad();
  return { done: () => ({ loadavgBefore: before, loadavgAfter: load1(), otherCores: other.stop() }) };
}

/**
 * A measured ratio against its goal. `ours` and `ref` are { rowsPerSecond, runs: [seconds...] }
 * plus whatever describes them (backend, threads, what the reference is). `pairs`: the ratio of
 * each round (both sides measured back to back); the figure is their median, which cancels most
 * of the drift of a shared machine. Without pairs it is the ratio of the medians.
 */
export function ratioRow({ suite, name, ours, ref, goal, pairs, higherIsBetter = true, note, probe }) {
  const value = pairs && pairs.length > 0 ? median(pairs) : ours.rowsPerSecond / ref.rowsPerSecond;
  const pass = higherIsBetter ? value >= goal : value <= goal;
  return {
    suite,
    name,
    ratio: value,
    ratioRuns: pairs?.map((p) => Number(p.toFixed(3))) ?? null,
    goal: `${higherIsBetter ? '>=' : '<='} ${goal}`,
    pass,
    ours,
    ref,
    note: note ?? '',
    load: probe ? probe.done() : null,
  };
}

/** { rowsPerSecond, seconds (median), runs, spread } of timed runs over `rows` rows. */
export function throughput(rows, runs, extra = {}) {
  const s = median(runs);
  return { rowsPerSecond: rows / s, seconds: s, runs, spread: Number(spread(runs).toFixed(3)), rows, ...extra };
}
