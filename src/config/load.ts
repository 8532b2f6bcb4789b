import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { JobConfigError } from './errors.js';
import { jobSchema, type JobConfig } from './schema.js';

/** Render a zod path like ['taps', 0, 'layer'] as 'taps[0].layer'. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out.length === 0 ? String(p) : `.${String(p)}`;
  }
  return out.length === 0 ? '(top level)' : out;
}

/** One zod issue as a field path and a message that names it (`taps[0].layer: ...`). */
export function describeIssue(issue: z.core.$ZodIssue): { field: string; message: string } {
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length ? `${fieldPath(issue.path)}.` : '';
    const keys = issue.keys.map((k) => `${where}${k}`);
    return { field: keys[0] ?? fieldPath(issue.path), message: `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}` };
  }
  const field = fieldPath(issue.path);
  if (issue.code === 'invalid_value' && 'values' in issue) {
    const choices = issue.values.map((v) => JSON.stringify(v)).join(', ');
    return { field, message: `${field}: invalid value; choose one of ${choices}` };
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return { field, message: `${field}: required (expected ${issue.expected})` };
  }
  return { field, message: `${field}: ${issue.message}` };
}

/** Every issue of a failed validation on one line, each naming its field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => describeIssue(i).message).join('; ');
}

/** Validate a parsed job object; `origin` (a file name) prefixes the error. */
export function parseJob(value: unknown, origin = 'job'): JobConfig {
  const result = jobSchema.safeParse(value);
  if (result.success) return result.data;
  const described = result.error.issues.map(describeIssue);
  const lines = described.map((d) => `  - ${d.message}`).join('\n');
  throw new JobConfigError(
    `invalid job file ${origin}:\n${lines}`,
    described.map((d) => d.field),
  );
}

/** Read and validate a job file (YAML, or JSON for .json). */
export async function loadJobFile(path: string): Promise<JobConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new JobConfigError(code === 'ENOENT' ? `job file not found: ${path}` : `cannot read job file ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new JobConfigError(`job file ${path} is not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new JobConfigError(`job file ${path} must be a mapping with name, source, model, taps and sink`);
  }
  return parseJob(value, path);
}
