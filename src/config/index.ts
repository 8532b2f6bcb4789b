export * from './schema.js';
export { DEFAULTS } from './defaults.js';
export * from './resolved.js';
export { JobConfigError } from './errors.js';
export { loadJobFile, parseJob, fieldPath, describeIssue, describeIssues } from './load.js';
export * from './resolved-schema.js';
export { defaultColumnName, absoluteUri } from './names.js';
