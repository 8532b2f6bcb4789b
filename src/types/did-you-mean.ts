/** Levenshtein distance between two strings. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next.push(Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

/**
 * Up to `count` names closest to `name`: names that end with it at a '.' or '/' (a module path
 * given without its parents), then by edit distance (case-insensitive) within a third of the
 * name's length, so that a typo finds its layer and a wild guess finds nothing.
 */
export function nearestNames(name: string, names: readonly string[], count = 3): string[] {
  const key = name.toLowerCase();
  const limit = Math.max(2, Math.floor(name.length / 3));
  return names
    .map((n) => {
      const lower = n.toLowerCase();
      const suffix = lower.endsWith(`.${key}`) || lower.endsWith(`/${key}`);
      return { n, d: suffix ? -1 : editDistance(key, lower) };
    })
    .filter((s) => s.d <= limit)
    .sort((a, b) => a.d - b.d)
    .slice(0, count)
    .map((s) => s.n);
}
