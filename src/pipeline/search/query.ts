import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ResolvedJob, ResolvedTap } from '../../config/resolved.js';
import { describeModel, type RuntimeRegistry } from '../../models/registry.js';
import { fromFloat16Array } from '../../types/float16.js';
import { modelSpecOf } from '../../workers/model-spec.js';
import { EmbedPool } from '../../workers/pool.js';
import type { BatchInput } from '../../workers/protocol.js';
import { computeFingerprint } from '../plan.js';
import { SearchInputError } from './errors.js';
import type { RunRef } from './run-ref.js';

/** What a run's model needs to embed one more row exactly as the run embedded its rows. */
export type QueryJob = Pick<ResolvedJob, 'model' | 'taps' | 'inputShape' | 'fingerprint' | 'preprocess' | 'text'>;

/** A query: text for a text model, an encoded image file for an image model. */
export type Query = { text: string } | { image: Uint8Array; name: string };

async function tokenizerHash(text: NonNullable<ResolvedJob['text']>): Promise<string> {
  const hash = createHash('sha256');
  for (const f of [text.tokenizer, text.tokenizerConfig]) {
    if (f === undefined) continue;
    try {
      hash.update(await readFile(f));
    } catch (err) {
      throw new SearchInputError(`cannot read the run's tokenizer ${f}: ${(err as Error).message}`);
    }
  }
  return hash.digest('hex');
}

/**
 * The run's model, preprocessing and taps from its manifest, checked: the model file (and
 * tokenizer) must still give the run's fingerprint, else queries would land in another vector
 * space and the search is refused.
 */
export async function queryJob(run: RunRef, runtimes?: RuntimeRegistry): Promise<QueryJob> {
  const m = run.manifest as RunRef['manifest'] & { text?: ResolvedJob['text']; model: RunRef['manifest']['model'] & Partial<ResolvedJob['model']> };
  const taps: ResolvedTap[] = (m.taps ?? []).map(({ shape: _shape, layout: _layout, ...t }) => t);
  let contentHash: string;
  try {
    contentHash = (await describeModel(m.model.uri, runtimes)).contentHash;
  } catch (err) {
    throw new SearchInputError(`cannot load the run's model ${m.model.uri}: ${(err as Error).message}`);
  }
  const text = m.text ? { ...m.text, tokenizerHash: await tokenizerHash(m.text) } : undefined;
  const fingerprint = computeFingerprint(contentHash, m.preprocess, taps, text, m.model.hub?.sha);
  if (fingerprint !== m.fingerprint) {
    throw new SearchInputError(
      `the model at ${m.model.uri} now gives fingerprint ${fingerprint}, not the run's ${m.fingerprint}: it changed since run ${m.runId}, so its queries would not compare with the run's rows`,
    );
  }
  const p = m.preprocess;
  const inputShape = text ? [] : p ? (p.layout === 'nhwc' ? [p.size[0], p.size[1], p.channels] : [p.channels, p.size[0], p.size[1]]) : [];
  return {
    model: {
      uri: m.model.uri,
      backend: m.model.backend,
      format: m.model.format,
      ...(m.model.intraOpThreads !== undefined ? { intraOpThreads: m.model.intraOpThreads } : {}),
      ...(m.model.hub !== undefined ? { hub: m.model.hub } : {}),
    },
    taps,
    inputShape,
    fingerprint,
    preprocess: p,
    ...(text ? { text } : {}),
  };
}

/**
 * A query's features in column `tap`, computed by the pool thread code a run's workers use
 * (same model loading, preprocessing, reduction, normalisation and dtype), so that a row's own
 * text or image gives the vector the run wrote for it.
 */
export async function embedQuery(job: QueryJob, query: Query, tap: string): Promise<Float32Array> {
  let input: BatchInput;
  if ('text' in query) {
    if (!job.text) throw new SearchInputError(`--text needs a text model; this run's model takes ${job.preprocess ? 'images (use --image FILE)' : 'tensors'}`);
    input = { kind: 'text', ids: ['query'], texts: [query.text] };
  } else {
    if (!job.preprocess) throw new SearchInputError(`--image needs an image model; this run's model takes ${job.text ? 'text (use --text)' : 'tensors'}`);
    input = { kind: 'images', ids: [query.name], files: [query.image] };
  }
  const pool = new EmbedPool({ threads: 1, backend: job.model.backend });
  try {
    const r = await pool.run({ model: modelSpecOf(job), input });
    const bad = r.errors[0];
    if (bad) throw new SearchInputError(`the query could not be embedded (${bad.stage}): ${bad.message}`);
    const out = r.taps[tap];
    if (!out) throw new SearchInputError(`the model gave no column '${tap}'`);
    if (out.lengths) throw new SearchInputError(`column '${tap}' holds token vectors, not one vector per row`);
    return out.data instanceof Float32Array ? out.data : fromFloat16Array(out.data);
  } finally {
    await pool.close();
  }
}
