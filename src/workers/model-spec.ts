import type { ResolvedJob, ResolvedTap } from '../config/resolved.js';
import { defaultRuntimes, threadModule, type RuntimeRegistry } from '../models/registry.js';
import type { ModelSpec } from '../models/types.js';

/** The column a text job's tapped tensor is fetched under, unreduced, before the thread pools it per row. */
export function rawTapName(tap: Pick<ResolvedTap, 'layer' | 'at'>): string {
  return `${tap.at}:${tap.layer}`;
}

/** Each tapped tensor of a text job once, unreduced: several reductions of one layer share it. */
function rawTaps(taps: readonly ResolvedTap[]): ResolvedTap[] {
  const byName = new Map<string, ResolvedTap>();
  for (const t of taps) {
    const as = rawTapName(t);
    if (!byName.has(as)) byName.set(as, { layer: t.layer, at: t.at, as, reduce: 'none', normalize: 'none', dtype: 'float32' });
  }
  return [...byName.values()];
}

/**
 * What a pool thread needs to load and run a job's model: the same for every batch of a job. The
 * runtime is the one of `runtimes` that handles the model, named by its module.
 */
export function modelSpecOf(
  job: Pick<ResolvedJob, 'model' | 'taps' | 'inputShape' | 'fingerprint' | 'preprocess' | 'text'>,
  runtimes: RuntimeRegistry = defaultRuntimes(),
): ModelSpec {
  return {
    uri: job.model.uri,
    runtime: threadModule(job.model.uri, runtimes),
    backend: job.model.backend,
    taps: job.text ? rawTaps(job.taps) : job.taps,
    ...(job.text ? { text: { spec: job.text, taps: job.taps } } : {}),
    inputShape: job.inputShape,
    fingerprint: job.fingerprint,
    preprocess: job.preprocess,
    ...(job.model.intraOpThreads !== undefined ? { intraOpThreads: job.model.intraOpThreads } : {}),
    ...(job.model.precision !== undefined ? { precision: job.model.precision } : {}),
    ...(job.model.hub !== undefined ? { hub: job.model.hub } : {}),
  };
}
