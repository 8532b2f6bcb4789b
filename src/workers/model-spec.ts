import type { ResolvedJob } from '../config/resolved.js';
import type { ModelSpec } from '../models/types.js';

/** What a pool thread needs to load and run a job's model: the same for every batch of a job. */
export function modelSpecOf(job: Pick<ResolvedJob, 'model' | 'taps' | 'inputShape' | 'fingerprint' | 'preprocess'>): ModelSpec {
  return {
    uri: job.model.uri,
    backend: job.model.backend,
    taps: job.taps,
    inputShape: job.inputShape,
    fingerprint: job.fingerprint,
    preprocess: job.preprocess,
    ...(job.model.intraOpThreads !== undefined ? { intraOpThreads: job.model.intraOpThreads } : {}),
  };
}
