/**
 * layertap: tap layers of a model over a dataset and write the features as Arrow files.
 *
 * @example
 * ```ts
 * import { runJob } from 'layertap';
 * const summary = await runJob('config/examples/demo.yaml');
 * // summary.output.files -> ['/abs/out/demo/<fingerprint>/<runId>/part-00000.arrow']
 * ```
 */
export * from './config/index.js';
export * from './queue/index.js';
export * from './workers/index.js';
export * from './models/index.js';
export * from './sources/index.js';
export * from './sinks/index.js';
export * from './ops/index.js';
export { VERSION } from './version.js';
