/**
 * The k best (highest-scoring) items seen so far, as a min-heap over their scores: pushing n
 * items costs O(n log k) and holds k, whatever n is. An item that only ties the lowest kept score
 * does not replace it.
 */
export class TopK<T> {
  private readonly scores: number[] = [];
  private readonly items: T[] = [];

  constructor(readonly k: number) {
    if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
  }

  /** the lowest score kept, -Infinity while fewer than k are kept: a score must beat it to enter */
  get floor(): number {
    return this.scores.length < this.k ? -Infinity : this.scores[0]!;
  }

  get size(): number {
    return this.scores.length;
  }

  push(score: number, item: T): void {
    if (this.scores.length < this.k) {
      this.scores.push(score);
      this.items.push(item);
      this.up(this.scores.length - 1);
    } else if (score > this.scores[0]!) {
      this.scores[0] = score;
      this.items[0] = item;
      this.down(0);
    }
  }

  /** the kept items, best first */
  sorted(): Array<{ score: number; item: T }> {
    return this.scores.map((score, i) => ({ score, item: this.items[i]!, i })).sort((a, b) => b.score - a.score || a.i - b.i);
  }

  private swap(a: number, b: number): void {
    [this.scores[a], this.scores[b]] = [this.scores[b]!, this.scores[a]!];
    [this.items[a], this.items[b]] = [this.items[b]!, this.items[a]!];
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.scores[p]! <= this.scores[i]!) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.scores.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.scores[l]! < this.scores[m]!) m = l;
      if (r < n && this.scores[r]! < this.scores[m]!) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}

/** `v` scaled to length 1 in place (a zero vector stays zero); returns it. */
export function normalizeInPlace(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / n;
  return v;
}
