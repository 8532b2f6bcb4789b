export * from './schema.js';
export * from './resolved.js';
export { JobConfigError } from './errors.js';
export { loadJobFile, parseJob, fieldPath } from './load.js';
export { defaultColumnName, absoluteUri } from './names.js';
