export { resolveJob, computeFingerprint, type ResolveOptions } from './plan.js';
export { processShard, type ShardContext } from './shard-processor.js';
export { IncrementalCache } from './incremental.js';
export { finalizeRun, type ShardOutcomes } from './finalize.js';
export { defaultRegistries, type Registries } from './registries.js';
export * from './types.js';
export { countDuplicateIds, duplicateIdsWarning, DUPLICATE_ID_ROWS, type DuplicateIds } from './duplicate-ids.js';
export { runsLocation } from './plan-io.js';
