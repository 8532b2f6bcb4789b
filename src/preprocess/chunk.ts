import type { ResolvedChunk } from '../config/resolved.js';
import type { TextTokenizer } from './tokenize.js';

/** One chunk of a row's text. */
export interface TextChunk {
  /** 0-based, in text order */
  chunk: number;
  /** offsets into the row's text in UTF-16 code units, for `text.slice(from, to)` */
  from: number;
  to: number;
  /** the same offsets in Unicode code points, as the output's `start` and `end` columns hold them */
  start: number;
  end: number;
  /** tokens of the chunk embedded alone: prefix and special tokens included */
  tokens: number;
}

/** Whitespace, as JavaScript regular expressions and byte-level pre-tokenizers see it. */
const WHITESPACE = /\s/;

/**
 * Characters of a row tokenized whole to learn whether it fits in one chunk; a longer row is
 * counted word by word, so that a row of MBs is never tokenized in one piece.
 */
const CHARS_PER_TOKEN = 16;

/** Words whose token counts are remembered (natural text repeats its words). */
const WORD_CACHE = 65_536;

/**
 * Cuts text rows into chunks of at most `tokens` tokens, each one embedded as its own text
 * (`prefix + text.slice(from, to)`, with the tokenizer's special tokens): a chunk's features are
 * those of that text alone, and it is never truncated, since every chunk's count is checked with
 * the tokenizer itself: counted whole, or, for a tokenizer whose counts add up word by word
 * (BERT's WordPiece: see `TextTokenizer.additive`), as the sum of its words' counts.
 *
 * Chunks are cut between words: before a space (U+0020) that follows a character other than
 * whitespace, where no common tokenizer (WordPiece, BPE, Unigram) lets the text on one side
 * change a token on the other. A chunk takes whole words while their token counts (each word
 * counted with the space before it) fit; consecutive chunks share the last whole words of the
 * earlier one, up to `overlap` tokens. A single word longer than a chunk (a stretch without
 * spaces: CJK text, a long URL) is cut between code points, and the chunk after such a cut
 * starts where it ended.
 */
export class TextChunker {
  /** content tokens a chunk may have: tokens less the special tokens */
  private readonly budget: number;
  private readonly words = new Map<string, number>();
  /** a chunk's count is the sum of its words' (and the prefix's): no chunk needs counting whole */
  private readonly additive: boolean;

  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly prefix: string,
    private readonly spec: Pick<ResolvedChunk, 'tokens' | 'overlap'>,
  ) {
    this.budget = spec.tokens - tokenizer.specialTokens;
    // a prefix that does not end in whitespace could join the first word of a chunk
    this.additive = tokenizer.additive && (prefix === '' || WHITESPACE.test(prefix.at(-1)!));
    const room = this.budget - (prefix === '' ? 0 : tokenizer.countTokens(prefix));
    if (room <= spec.overlap) {
      throw new ChunkSettingsError(
        `leaves ${Math.max(0, room)} token(s) of text per chunk (${spec.tokens} less ${tokenizer.specialTokens} special token(s)` +
          `${prefix === '' ? '' : ' and the prefix'}), not more than overlap (${spec.overlap})`,
      );
    }
  }

  /** The chunks of `text`, in order; at least one (an empty text is one empty chunk). */
  split(text: string): TextChunk[] {
    const spans: Array<[number, number, number]> = [];
    if (text.length <= this.budget * CHARS_PER_TOKEN) {
      const n = this.count(text, 0, text.length);
      if (n <= this.budget) spans.push([0, text.length, n]);
    }
    if (spans.length === 0) this.pack(text, spans);
    return withCodePoints(text, spans, this.tokenizer.specialTokens);
  }

  /** Content tokens of `prefix + text[from, to)`: what the chunk is when embedded alone, without special tokens. */
  private count(text: string, from: number, to: number): number {
    return this.tokenizer.countTokens(this.prefix + text.slice(from, to));
  }

  /** Tokens of one word (with the space before it), remembered. */
  private wordTokens(word: string): number {
    let n = this.words.get(word);
    if (n === undefined) {
      n = this.tokenizer.countTokens(word);
      if (this.words.size >= WORD_CACHE) this.words.clear();
      this.words.set(word, n);
    }
    return n;
  }

  private pack(text: string, spans: Array<[number, number, number]>): void {
    const words = new Words(text);
    let start = 0;
    while (start < text.length || spans.length === 0) {
      // whole words while their counts fit: [start, ends[k]) for each word k taken
      const ends: number[] = [];
      const costs: number[] = [];
      let used = this.prefix === '' ? 0 : this.wordTokens(this.prefix);
      let at = start;
      while (at < text.length) {
        const next = words.after(at);
        const cost = this.wordTokens(text.slice(at, next));
        if (used + cost > this.budget && ends.length > 0) break;
        used += cost;
        ends.push(next);
        costs.push(cost);
        at = next;
        if (used > this.budget) break;
      }
      let k = ends.length - 1;
      let n: number;
      if (this.additive) {
        // the words' counts add up to the chunk's: only a first word alone can be over
        n = used;
      } else {
        // the counts were word by word: the chunk's own count decides, dropping words until it fits
        n = k >= 0 ? this.count(text, start, ends[k]!) : this.count(text, start, start);
        while (n > this.budget && k > 0) {
          k--;
          n = this.count(text, start, ends[k]!);
        }
      }
      let end = k >= 0 ? ends[k]! : start;
      let split = false;
      if (n > this.budget) {
        // one word longer than a chunk: the longest run of its code points that fits
        [end, n] = this.longestFit(text, start, end);
        split = true;
      }
      spans.push([start, end, n]);
      if (end >= text.length) return;
      start = split ? end : this.overlapStart(start, ends.slice(0, k + 1), costs.slice(0, k + 1));
    }
  }

  /** Where the chunk after [start, ends[last]) starts: the last whole words of it, up to `overlap` tokens (never its first word). */
  private overlapStart(start: number, ends: number[], costs: number[]): number {
    let shared = 0;
    let j = ends.length - 1;
    // words j..last are shared while they fit; word 0 never is, so every chunk moves on
    while (j >= 1 && shared + costs[j]! <= this.spec.overlap) {
      shared += costs[j]!;
      j--;
    }
    return j >= 0 ? ends[j]! : start;
  }

  /** The furthest cut between code points in (start, limit] whose chunk fits, found by bisection, and its count. */
  private longestFit(text: string, start: number, limit: number): [number, number] {
    const hi = Math.min(limit, start + this.budget * CHARS_PER_TOKEN);
    // the cuts that split no surrogate pair; the first one is a chunk of one code point
    const cuts: number[] = [];
    for (let i = start + 1; i <= hi || cuts.length === 0; i++) if (i >= text.length || !isLowSurrogate(text, i)) cuts.push(Math.min(i, text.length));
    let lo = -1;
    let loCount = 0;
    let top = cuts.length - 1;
    while (lo < top) {
      const mid = Math.ceil((lo + top + 1) / 2);
      const n = this.count(text, start, cuts[mid]!);
      if (n <= this.budget) {
        lo = mid;
        loCount = n;
      } else {
        top = mid - 1;
      }
    }
    // not even one code point fits beside the prefix: it goes alone (as any row, cut at maxLength)
    if (lo < 0) return [cuts[0]!, this.count(text, start, cuts[0]!)];
    return [cuts[lo]!, loCount];
  }
}

/** A chunk setting the tokenizer cannot meet (the planner names the field). */
export class ChunkSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkSettingsError';
  }
}

/** Word ends of a text: cuts before a space that follows a character other than whitespace. */
class Words {
  constructor(private readonly text: string) {}

  /** The next cut after `at` (the text's end when there is none). */
  after(at: number): number {
    const t = this.text;
    for (let i = at + 1; i < t.length; i++) {
      if (t.charCodeAt(i) === 0x20 && !WHITESPACE.test(t[i - 1]!)) return i;
    }
    return t.length;
  }
}

function isLowSurrogate(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Spans in code units with their code point offsets and token counts (special tokens added). */
function withCodePoints(text: string, spans: Array<[number, number, number]>, specials: number): TextChunk[] {
  // starts and ends each only move forward: one cursor each
  const starts = new CodePoints(text);
  const ends = new CodePoints(text);
  return spans.map(([from, to, n], chunk) => ({ chunk, from, to, start: starts.at(from), end: ends.at(to), tokens: n + specials }));
}

/** Code point offsets of code unit offsets that never go back. */
class CodePoints {
  private unit = 0;
  private point = 0;

  constructor(private readonly text: string) {}

  at(offset: number): number {
    for (; this.unit < offset; this.unit++) if (!isLowSurrogate(this.text, this.unit)) this.point++;
    return this.point;
  }
}
