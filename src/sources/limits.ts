/** Longest JSONL line read as a row; a longer one is an error row (`source.maxLineBytes`). */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;

/** Largest file or object read for one row, e.g. an image; a larger one is an error row (`source.maxRowBytes`). */
export const DEFAULT_MAX_ROW_BYTES = 256 * 1024 * 1024;

/** Checks a limit given in code (the job file's are checked by its schema). */
export function checkLimit(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be a positive integer (bytes), got ${v}`);
  return v;
}
