import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve as resolvePath } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { nearestNames } from '../types/did-you-mean.js';
import { JobConfigError } from './errors.js';
import { absoluteUri } from './names.js';
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

/** The schema under its optional and default wrappers. */
function unwrapped(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault) s = s.unwrap() as z.ZodType;
  return s;
}

/** The field names an object of `schema` takes at `path` (list items by index), or [] where there is no object. */
export function fieldsAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  let s = unwrapped(schema);
  for (const p of path) {
    const next: z.ZodType | undefined =
      s instanceof z.ZodObject && typeof p === 'string'
        ? (s.shape as Record<string, z.ZodType>)[p]
        : s instanceof z.ZodArray && typeof p === 'number'
          ? (s.element as z.ZodType)
          : undefined;
    if (next === undefined) return [];
    s = unwrapped(next);
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** What a type name of zod's issues reads as in a job file (YAML or JSON). */
const EXPECTED: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping of fields',
  array: 'a list',
};

/** The value a job file gave, as a user would name it: `the string "sixteen"`, `the number 1.5`, `a list`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null (an empty value)';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value}`;
}

/**
 * One zod issue as a field path and a message that names it (`taps[0].layer: ...`). `schema`, the
 * schema that was checked, gives unknown fields their nearest known names ("did you mean"), and
 * with it a value of the wrong type is described as given (parsed with zod's `reportInput`).
 */
export function describeIssue(issue: z.core.$ZodIssue, schema?: z.ZodType): { field: string; message: string } {
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length ? `${fieldPath(issue.path)}.` : '';
    const known = schema ? fieldsAt(schema, issue.path) : [];
    let guessed = 0;
    const keys = issue.keys.map((k) => {
      const near = nearestNames(k, known, 1);
      if (near.length) guessed++;
      return `'${where}${k}'${near.length ? ` (did you mean '${where}${near[0]}'?)` : ''}`;
    });
    // a name with no near match gets the list of what may stand there
    const list = guessed < keys.length && known.length ? `; ${where ? `${fieldPath(issue.path)} takes` : 'a job file takes'}: ${known.join(', ')}` : '';
    const field = issue.keys[0] !== undefined ? `${where}${issue.keys[0]}` : fieldPath(issue.path);
    return { field, message: `unknown field${keys.length > 1 ? 's' : ''} ${keys.join(', ')}${list}` };
  }
  const field = fieldPath(issue.path);
  if (issue.code === 'invalid_value' && 'values' in issue) {
    const choices = issue.values.map((v) => JSON.stringify(v)).join(', ');
    return { field, message: `${field}: invalid value; choose one of ${choices}` };
  }
  // a job file's reader is told what it wrote; data the program wrote (queue jobs, records) keeps zod's wording
  if (issue.code === 'invalid_type' && schema !== undefined && 'input' in issue) {
    const expected = EXPECTED[issue.expected] ?? issue.expected;
    if (issue.input === undefined) return { field, message: `${field}: required (expected ${expected})` };
    return { field, message: `${field}: expected ${expected}, got ${describeValue(issue.input)}` };
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
  const result = jobSchema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const described = result.error.issues.map((i) => describeIssue(i, jobSchema));
  const lines = described.map((d) => `  - ${d.message}`).join('\n');
  throw new JobConfigError(
    `invalid job file ${origin}:\n${lines}`,
    described.map((d) => d.field),
  );
}

/**
 * The job's locations with every relative path read against `dir`, as docker compose reads a
 * compose file's: a job file then means the same from any folder and from a schedule. URIs with
 * a scheme (s3://, builtin:, hf:) stay as they are.
 */
export function withPathsFrom(job: JobConfig, dir: string): JobConfig {
  const abs = (uri: string) => absoluteUri(uri, dir);
  return {
    ...job,
    source: { ...job.source, uri: abs(job.source.uri) },
    model: { ...job.model, uri: abs(job.model.uri), ...(job.model.tokenizer !== undefined ? { tokenizer: abs(job.model.tokenizer) } : {}) },
    sink: { ...job.sink, uri: abs(job.sink.uri) },
  };
}

/**
 * Read and validate a job file (YAML, or JSON for .json). Its relative paths are made absolute
 * against the job file's folder ({@link withPathsFrom}).
 */
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
  return withPathsFrom(parseJob(value, path), dirname(resolvePath(path)));
}
