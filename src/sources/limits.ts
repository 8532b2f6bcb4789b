/** Checks a limit given in code (the job file's are checked by its schema). */
export function checkLimit(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be a positive integer (bytes), got ${v}`);
  return v;
}
