import { createHash } from 'node:crypto';
import { DEFAULTS } from '../config/defaults.js';
import { JobConfigError } from '../config/errors.js';
import { absoluteUri } from '../config/names.js';
import type { CarriedColumn, ResolvedJob, ResolvedPreprocess, ResolvedTap, ResolvedText } from '../config/resolved.js';
import { ID_COLUMN } from '../sinks/arrow-schema.js';
import { CHUNK_COLUMNS } from '../types/columns.js';
import type { JobConfig } from '../config/schema.js';
import { backendMismatch, describeModel, runtimeFor, threadModule, type RuntimeRegistry } from '../models/registry.js';
import type { ModelDescription } from '../models/types.js';
import type { RowShape, Source } from '../sources/types.js';
import { configError, openSource, planSink, setFields, sourceKind } from './plan-io.js';
import { hubTextDefaults, planHubModel, planTaps, resolvedHub } from './plan-hub.js';
import { checkFedInput, resolveFedInput } from './plan-preprocess.js';
import { checkChunkMeanTaps, checkNoTextFields, resolveText, takesText } from './plan-text.js';
import { defaultRegistries, type Registries } from './registries.js';

// Planning a job, by what it plans: the taps (plan-taps.ts), text (plan-text.ts), what image and
// tensor rows feed the model (plan-preprocess.ts), the sink and the source (plan-io.ts); here the
// model, the fingerprint, and the order of the checks.

/** Options for {@link resolveJob}. */
export interface ResolveOptions {
  /** base for relative paths in the job file. @defaultValue process.cwd() */
  cwd?: string;
  /** what the job's source type, sink scheme and format, and model runtime are looked up in. @defaultValue the built-ins */
  registries?: Registries;
}

/**
 * sha256 of model content + preprocessing (for text: the tokenizer's hash, maxLength, prefix) +
 * taps, and for a model of the Hub its commit, as 16 hex characters.
 */
export function computeFingerprint(
  contentHash: string,
  preprocess: ResolvedPreprocess | null,
  taps: ResolvedTap[],
  text?: ResolvedText,
  commit?: string,
): string {
  const canonical = JSON.stringify({
    model: contentHash,
    // a moved branch starts a new vector space instead of mixing two; only for Hub models, so that other fingerprints stay what they were
    ...(commit !== undefined ? { commit } : {}),
    preprocess,
    // only for text, so that the fingerprints of image and tensor jobs stay what they were; the
    // chunk settings only when set, since a chunked run's rows are chunks (or their means)
    ...(text ? { text: [text.tokenizerHash, text.maxLength, text.prefix, ...(text.chunk ? [text.chunk] : [])] } : {}),
    // axes only when set, so that the fingerprints of jobs without them stay what they were
    taps: taps.map((t) => [t.layer, t.at, t.as, t.reduce, t.normalize, t.dtype, ...(t.axes ? [t.axes] : [])]),
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

async function describe(uri: string, runtimes: RuntimeRegistry): Promise<ModelDescription> {
  try {
    return await describeModel(uri, runtimes);
  } catch (err) {
    if (err instanceof JobConfigError) throw err;
    throw new JobConfigError(`model.uri: ${(err as Error).message}`, ['model.uri']);
  }
}

/** The columns a job copies from its source: `source.carry`, a text job's text column by default; none may share a name with a tap or a chunk column. */
async function planCarry(source: Source, taps: ResolvedTap[], text: ResolvedText | undefined): Promise<CarriedColumn[]> {
  let carry: CarriedColumn[];
  try {
    carry = source.carried ? await source.carried() : [];
  } catch (err) {
    throw configError(err, 'source.carry');
  }
  const chunkColumns: readonly string[] = text?.chunk && !text.chunk.reduce ? CHUNK_COLUMNS : [];
  carry.forEach((c, i) => {
    if (c.name === ID_COLUMN) {
      throw new JobConfigError(`source.carry[${i}]: '${c.name}' is the name of the output's row id column; carry other columns`, [`source.carry[${i}]`]);
    }
    if (chunkColumns.includes(c.name)) {
      throw new JobConfigError(
        `source.carry[${i}]: '${c.name}' is the name of a chunk column (${CHUNK_COLUMNS.join(', ')}) of a chunked job; carry other columns`,
        [`source.carry[${i}]`],
      );
    }
    const t = taps.findIndex((tap) => tap.as === c.name);
    if (t >= 0)
      throw new JobConfigError(`source.carry[${i}]: '${c.name}' is also the column of taps[${t}]; name the tap otherwise with 'as'`, [`source.carry[${i}]`]);
  });
  return carry;
}

/**
 * Check a validated job against its model and source and decide every default. Fails with a
 * {@link JobConfigError} naming the field before any work is done.
 */
export async function resolveJob(job: JobConfig, opts: ResolveOptions = {}): Promise<ResolvedJob> {
  const cwd = opts.cwd ?? process.cwd();
  const { sources, sinks, formats, runtimes } = opts.registries ?? defaultRegistries();
  const sourceUri = absoluteUri(job.source.uri, cwd);
  // an hf: model is fetched into the Hub cache first: the runtime sees its local file
  const hub = await planHubModel(job);
  const modelUri = hub ? hub.model : absoluteUri(job.model.uri, cwd);
  let mismatch: string | null;
  try {
    mismatch = backendMismatch(job.model.uri, job.model.backend, runtimeFor(modelUri, runtimes), runtimes);
    // the pool threads must be able to import the runtime, or the job would fail in them
    threadModule(modelUri, runtimes);
  } catch (err) {
    throw configError(err, 'model.uri');
  }
  if (mismatch !== null) throw new JobConfigError(`model.backend: ${mismatch}`, ['model.backend']);
  const sink = await planSink(job, absoluteUri(job.sink.uri, cwd), sinks, formats);
  const { type, isTable } = sourceKind(job, sourceUri, sources);
  const desc = await describe(modelUri, runtimes);
  const text = takesText(desc) ? await resolveText(job, desc, modelUri, cwd, hubTextDefaults(hub)) : undefined;
  if (!text) {
    checkFedInput(desc, job.model.uri);
    checkNoTextFields(job);
  }
  const taps = planTaps(job, desc, text !== undefined, hub);
  await checkChunkMeanTaps(text, modelUri, taps, runtimes);

  // a table's string column is text when the model takes token ids
  const sourceSpec = { ...setFields(job.source), uri: sourceUri, type, ...(text && isTable ? { text: true } : {}) };
  const source = await openSource(sourceSpec, sources);
  let fed: { preprocess: ResolvedPreprocess | null; inputShape: number[] };
  let carry: CarriedColumn[];
  try {
    carry = await planCarry(source, taps, text);
    if (text) {
      if (!isTable && type !== 'text')
        throw new JobConfigError(`source.uri: the model takes token ids; a ${type} source has no text (use a table with a string column, or a .txt file)`, [
          'source.uri',
        ]);
      fed = { preprocess: null, inputShape: [] };
    } else {
      // null for images (folders, prefixes, image columns of tables), else the tensor rows' shape
      let rowShape: RowShape;
      try {
        rowShape = await source.rowShape();
      } catch (err) {
        throw configError(err, 'source.uri');
      }
      fed = resolveFedInput(job, desc, rowShape, { type, isTable });
    }
  } finally {
    await source.close();
  }
  return {
    name: job.name,
    // workers read the carried columns planning decided (a text job's text column by default)
    source: { ...sourceSpec, ...(carry.length > 0 || job.source.carry !== undefined ? { carry: carry.map((c) => c.name) } : {}) },
    model: {
      uri: modelUri,
      backend: job.model.backend,
      format: desc.format,
      ...(job.model.intraOpThreads !== undefined ? { intraOpThreads: job.model.intraOpThreads } : {}),
      ...(hub ? { hub: resolvedHub(hub) } : {}),
    },
    preprocess: fed.preprocess,
    ...(text ? { text } : {}),
    taps,
    ...(carry.length > 0 ? { carry } : {}),
    batchSize: job.batchSize,
    shardSize: job.shardSize,
    sink,
    attempts: job.attempts,
    incremental: job.incremental ?? DEFAULTS.job.incremental,
    onShardFailure: job.onShardFailure,
    fingerprint: computeFingerprint(desc.contentHash, fed.preprocess, taps, text, hub?.sha),
    inputShape: fed.inputShape,
  };
}
