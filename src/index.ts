/**
 * layertap: tap layers of a model over a dataset and write the features as Arrow files.
 *
 * The public API: what the README's "From code" section shows, and the types those functions
 * take and return. Everything else is internal and may change between versions.
 *
 * @example
 * ```ts
 * import { runJob } from 'layertap';
 * const summary = await runJob('config/examples/demo.yaml');
 * // summary.output.files -> ['/abs/out/demo/<fingerprint>/<runId>/part-00000.arrow']
 * ```
 */

// job files
export { loadJobFile, parseJob } from './config/load.js';
export { JobConfigError } from './config/errors.js';
export type { JobConfig, JobInput, TapConfig, PreprocessConfig, ChunkConfig, BackendName, SourceType, SinkFormat } from './config/schema.js';
export type { ResolvedJob, ResolvedTap, ResolvedPreprocess } from './config/resolved.js';
export { resolveJob, type ResolveOptions } from './pipeline/plan.js';

// running jobs: in this process, or through a deployment's Redis
export { runJob, waitForRun, type RunOptions } from './queue/run.js';
export { LayertapClient, type EnqueueOptions, type LayertapClientOptions } from './queue/client.js';
export { LayertapWorker, WORKER_DEFAULTS, type LayertapWorkerOptions, type BatchOrigin, type ForwardStats } from './queue/worker.js';
export { settingsFromEnv, type QueueSettings } from './queue/connection.js';
export { ScheduleManager, type ScheduleInfo, type ScheduleTiming } from './queue/schedules.js';
export { FINAL_STATUSES, type RunSummary, type RunRecord, type RunStatus, type ShardResult } from './queue/types.js';

// models: what `layertap layers` shows
export { listLayers, describeModel, type ListLayersOptions } from './models/index.js';
export type { LayerInfo, ModelDescription, ModelInputInfo } from './models/types.js';

// registries: the source types, sink schemes, part formats and model runtimes a job's names are
// looked up in; a program adds its own kinds to them (README, "From code")
export { defaultRegistries, type Registries } from './pipeline/registries.js';
export { Registry, UnknownNameError } from './types/registry.js';
export { defaultSources, type SourceEntry, type SourceField, type SourceRegistry, type SourceSpec } from './sources/registry.js';
export { planIds, planRows } from './sources/shards.js';
export type { ReadHint, RowShape, ShardSpec, Source, SourceRow } from './sources/types.js';
export { defaultSinks, type SinkEntry, type SinkField, type SinkRegistry, type SinkSpec } from './storage/registry.js';
export type { Sink, SinkWriter } from './storage/types.js';
export { defaultFormats, type BatchFileWriter, type FormatRegistry, type PartFormatEntry } from './sinks/formats.js';
export type { StagedShard, TableCommit, TableDestination, TableFormat, TableIndexSpec, TableRun, TableSpec } from './sinks/table-destination.js';
export { defaultRuntimes, type RuntimeEntry, type RuntimeRegistry } from './models/registry.js';
export type { Runtime } from './models/types.js';
// what a runtime of a program's own implements, and the reductions its taps ask for
export type { ModelInputs, ModelRunner, ModelSpec, NamedTensor, RuntimeModule, TapOutput } from './models/types.js';
export { encodeTap, tapValues } from './models/reductions.js';

// searching and mapping a committed run (README, "Search, neighbours and maps")
export { openRun, pickColumn, type RunRef, type OpenRunOptions } from './pipeline/search/run-ref.js';
export { neighbours, nearestRows, type NearestOptions, type NeighboursResult, type Hit, type Cell } from './pipeline/search/nearest.js';
export { embedQuery, queryJob, type Query, type QueryJob } from './pipeline/search/query.js';
export { mapRun, mapTable, mapParquet, MAP_METHODS, type MapMethod, type MapOptions, type RunMap } from './pipeline/search/map.js';
export { SearchInputError } from './pipeline/search/errors.js';
export { ScanPool, type ScanPoolOptions } from './workers/scan-pool.js';

// logging
export { createLogger, type LoggerOptions, type LogFormat } from './ops/logger.js';
export { callbackLogger, silentLogger, type Logger, type LogFields, type LogLevel } from './types/logger.js';

export { VERSION } from './version.js';
