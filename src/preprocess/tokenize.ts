import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ResolvedText } from '../config/resolved.js';
import type { ModelInputs, NamedTensor } from '../models/types.js';

/** A tokenizer file that cannot be used; names the file (`detail` goes on from there: 'does not load: ...'). */
export class TokenizerFileError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`tokenizer ${file} ${detail}`);
    this.name = 'TokenizerFileError';
  }
}

/** Token ids of a batch of rows, before padding. */
export interface TokenizedBatch {
  /** per row, its ids, special tokens included, cut to maxLength */
  ids: Int32Array[];
  /** per row, its token type ids (same lengths as `ids`) */
  types: Int32Array[];
  /** rows that were cut at maxLength */
  truncated: number;
}

/** The special tokens a tokenizer puts around one sequence, with their token types. */
interface Template {
  before: number[];
  after: number[];
  beforeTypes: number[];
  afterTypes: number[];
  /** the token type of the sequence itself */
  sequenceType: number;
}

function readJson(file: string): object {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TokenizerFileError(file, `cannot be read: ${(err as Error).message}`);
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (err) {
    throw new TokenizerFileError(file, `is not a tokenizer file: ${(err as Error).message}`);
  }
}

/**
 * A Hugging Face tokenizer (tokenizer.json, with tokenizer_config.json when given) that cuts rows
 * at `maxLength` tokens and keeps the template's special tokens, since `@huggingface/tokenizers`
 * does not truncate: the content ids are cut, then put back between the special tokens.
 */
export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  /** the first cut of a long row, at least (see {@link minCutOf}) */
  private readonly minCut: number;
  /** a text's tokens are its words' tokens, one word after another (see {@link wordsAdd}) */
  readonly additive: boolean;

  constructor(private readonly text: Pick<ResolvedText, 'tokenizer' | 'tokenizerConfig' | 'maxLength' | 'prefix'>) {
    const json = readJson(text.tokenizer);
    const config = text.tokenizerConfig !== undefined ? readJson(text.tokenizerConfig) : {};
    this.minCut = minCutOf(json);
    this.additive = wordsAdd(json);
    try {
      this.tokenizer = new Tokenizer(json, config);
      this.template = templateOf(this.tokenizer);
    } catch (err) {
      throw new TokenizerFileError(text.tokenizer, `does not load: ${(err as Error).message}`);
    }
    const specials = this.template.before.length + this.template.after.length;
    if (text.maxLength <= specials) {
      throw new TokenizerFileError(text.tokenizer, `with maxLength ${text.maxLength} leaves no room for text besides the ${specials} special tokens`);
    }
  }

  /** How many special tokens the tokenizer puts around each row ([CLS] and [SEP] for BERT). */
  get specialTokens(): number {
    return this.template.before.length + this.template.after.length;
  }

  /** How many tokens `text` is, as it is (no prefix, no special tokens). */
  countTokens(text: string): number {
    return this.contentOf(text).length;
  }

  /** The largest id the tokenizer can give (its vocabulary and added tokens). */
  maxId(): number {
    let max = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) if (id > max) max = id;
    return max;
  }

  /** Token ids of `texts`, each cut to maxLength with its special tokens kept. */
  encode(texts: readonly string[]): TokenizedBatch {
    const { before, after, beforeTypes, afterTypes, sequenceType } = this.template;
    const room = this.text.maxLength - before.length - after.length;
    const out: TokenizedBatch = { ids: [], types: [], truncated: 0 };
    for (const text of texts) {
      const { content, truncated } = this.contentIds(text, room);
      if (truncated) out.truncated++;
      const n = Math.min(room, content.length);
      const ids = new Int32Array(before.length + n + after.length);
      const types = new Int32Array(ids.length);
      ids.set(before, 0);
      types.set(beforeTypes, 0);
      for (let k = 0; k < n; k++) ids[before.length + k] = content[k]!;
      types.fill(sequenceType, before.length, before.length + n);
      ids.set(after, before.length + n);
      types.set(afterTypes, before.length + n);
      out.ids.push(ids);
      out.types.push(types);
    }
    return out;
  }

  /**
   * The first `room` content ids of a row (prefix included) and whether it has more: the same as
   * tokenizing it whole and cutting, at a cost that follows `room`, not the row's length. A long
   * row is cut first, {@link CHARS_PER_TOKEN} characters per token of room in, and the cut
   * doubles until its text gives more than `room` ids (or reaches the row's end). A cut before a
   * space that ends a word gives the whole row's first tokens exactly: no common tokenizer
   * (WordPiece, BPE, Unigram) lets the text after such a space change a token before it. When the
   * cut falls in a stretch without spaces, the stretch's end is the cut, unless it is more than
   * {@link STRETCH} times further (CJK, a huge URL): then the tokens are those two cuts inside
   * the stretch (this one and the last) agree on, as a token far from both cuts depends on
   * neither.
   */
  private contentIds(text: string, room: number): { content: number[]; truncated: boolean } {
    const row = new RowText(this.text.prefix, text);
    let want = Math.max(this.minCut, room * CHARS_PER_TOKEN);
    let previous: number[] | null = null;
    while (want < row.length) {
      const cut = row.lastBoundary(Math.ceil(want / 2), want) ?? row.firstBoundary(want, STRETCH * want);
      if (cut === null) {
        const ids = this.contentOf(row.head(row.codePointCut(want)));
        if (previous !== null && agreedLength(previous, ids) > room) return { content: ids.slice(0, room), truncated: true };
        previous = ids;
      } else if (cut < row.length) {
        const ids = this.contentOf(row.head(cut));
        if (ids.length > room) return { content: ids.slice(0, room), truncated: true };
        previous = null;
        want = Math.max(want, cut);
      } else {
        break;
      }
      want *= 2;
    }
    const content = this.contentOf(row.head(row.length));
    return { content, truncated: content.length > room };
  }

  private contentOf(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }
}

/**
 * Characters of a row kept per token of room by a first cut: more than most tokens span (about
 * 4 in English), so a second cut is rarely needed; a row of longer tokens gets longer cuts.
 */
const CHARS_PER_TOKEN = 16;
/**
 * The shortest first cut; shorter rows are tokenized whole. It keeps the two cuts compared in a
 * stretch without spaces far apart: a word that spans both has over half this many characters
 * in the longer one, more than a WordPiece model reads of a word before it makes it `[UNK]`.
 */
const MIN_CUT = 1024;
/** How much further than a cut the end of a stretch without spaces is looked for (see contentIds). */
const STRETCH = 8;

/**
 * The shortest first cut for a tokenizer file: {@link MIN_CUT}, or four times a WordPiece
 * model's `max_input_chars_per_word` when that is larger, since a word longer than that becomes
 * one `[UNK]` and a cut can make it short enough to be split into pieces instead.
 */
function minCutOf(json: object): number {
  const model = (json as { model?: { max_input_chars_per_word?: unknown } }).model;
  const chars = model?.max_input_chars_per_word;
  return typeof chars === 'number' && Number.isFinite(chars) ? Math.max(MIN_CUT, 4 * chars) : MIN_CUT;
}

/** Normalizers that change a text character by character, never joining two words. */
const CHARACTER_NORMALIZERS = new Set(['BertNormalizer', 'Lowercase', 'NFD', 'NFC', 'NFKD', 'NFKC', 'StripAccents']);
/** Pre-tokenizers that split at every space, so that no token spans two words. */
const SPACE_PRE_TOKENIZERS = new Set(['BertPreTokenizer', 'Whitespace', 'WhitespaceSplit']);

/**
 * True when the tokens of a text are those of its words one after another (each cut before a
 * space that ends a word): a WordPiece model behind a pre-tokenizer that splits at spaces and a
 * normalizer that works character by character (BERT's tokenizers), and no added token holding a
 * space. Then a text's count is the sum of its words' counts; other tokenizers are counted whole.
 */
function wordsAdd(json: object): boolean {
  const j = json as { normalizer?: unknown; pre_tokenizer?: unknown; model?: { type?: unknown }; added_tokens?: Array<{ content?: unknown }> };
  const types = (v: unknown, list: string): string[] => {
    if (v === null || v === undefined) return [];
    const o = v as Record<string, unknown>;
    return o['type'] === 'Sequence' && Array.isArray(o[list]) ? (o[list] as unknown[]).flatMap((x) => types(x, list)) : [String(o['type'])];
  };
  const pre = types(j.pre_tokenizer, 'pretokenizers');
  return (
    j.model?.type === 'WordPiece' &&
    pre.length > 0 &&
    pre.every((t) => SPACE_PRE_TOKENIZERS.has(t)) &&
    types(j.normalizer, 'normalizers').every((t) => CHARACTER_NORMALIZERS.has(t)) &&
    (j.added_tokens ?? []).every((t) => typeof t.content === 'string' && !/\s/.test(t.content))
  );
}

/** Whitespace, as JavaScript regular expressions and byte-level pre-tokenizers see it. */
const WHITESPACE = /\s/;

/** `prefix + text` read in place: the text can be MB long, and only its head is tokenized. */
class RowText {
  readonly length: number;

  constructor(
    private readonly prefix: string,
    private readonly text: string,
  ) {
    this.length = prefix.length + text.length;
  }

  /** The first `n` code units. */
  head(n: number): string {
    return n <= this.prefix.length ? this.prefix.slice(0, n) : this.prefix + this.text.slice(0, n - this.prefix.length);
  }

  private code(i: number): number {
    return i < this.prefix.length ? this.prefix.charCodeAt(i) : this.text.charCodeAt(i - this.prefix.length);
  }

  /**
   * A cut before a space (U+0020) that follows a character other than whitespace: the end of a
   * word for every common tokenizer (other whitespace is not: BERT drops vertical tabs and BOMs
   * inside a word, and SentencePiece vocabularies can hold pieces with a newline inside).
   */
  private isBoundary(i: number): boolean {
    if (i <= 0 || i >= this.length || this.code(i) !== 0x20) return false;
    return !WHITESPACE.test(String.fromCharCode(this.code(i - 1)));
  }

  /** The last word boundary in [from, to], or null. */
  lastBoundary(from: number, to: number): number | null {
    for (let i = Math.min(to, this.length - 1); i >= from; i--) if (this.isBoundary(i)) return i;
    return null;
  }

  /** The first word boundary in [from, to], the row's end when it comes first, or null. */
  firstBoundary(from: number, to: number): number | null {
    for (let i = from; i <= to; i++) {
      if (i >= this.length) return this.length;
      if (this.isBoundary(i)) return i;
    }
    return null;
  }

  /** `at`, or one less when that would split a surrogate pair. */
  codePointCut(at: number): number {
    const last = this.code(at - 1);
    return last >= 0xd800 && last <= 0xdbff ? at - 1 : at;
  }
}

/** How many ids two tokenizations share from the start. */
function agreedLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let k = 0;
  while (k < n && a[k] === b[k]) k++;
  return k;
}

/**
 * Where a tokenizer puts its special tokens around one sequence: found by encoding a probe with
 * and without them and locating the sequence inside, so any post-processor (template, BERT,
 * RoBERTa, none) is read the same way.
 */
function templateOf(tokenizer: Tokenizer): Template {
  for (const probe of ['a', 'the', 'x', '1', 'hello']) {
    const content: number[] = tokenizer.encode(probe, { add_special_tokens: false }).ids;
    if (content.length === 0) continue;
    const full = tokenizer.encode(probe, { return_token_type_ids: true });
    const types = full.token_type_ids ?? full.ids.map(() => 0);
    for (let k = 0; k + content.length <= full.ids.length; k++) {
      if (content.every((id, j) => full.ids[k + j] === id)) {
        const end = k + content.length;
        return {
          before: full.ids.slice(0, k),
          after: full.ids.slice(end),
          beforeTypes: types.slice(0, k),
          afterTypes: types.slice(end),
          sequenceType: types[k] ?? 0,
        };
      }
    }
  }
  throw new Error('cannot tell where its special tokens go: no probe text was found inside its own encoding');
}

/** Model inputs a tokenized batch fills, by name and dtype, padded with zeros to its longest row. */
export function textInputs(batch: TokenizedBatch, inputs: ResolvedText['inputs']): { inputs: ModelInputs; mask: Uint8Array; tokens: number } {
  const rows = batch.ids.length;
  const tokens = batch.ids.reduce((m, r) => Math.max(m, r.length), 0);
  const mask = new Uint8Array(rows * tokens);
  batch.ids.forEach((r, i) => mask.fill(1, i * tokens, i * tokens + r.length));
  const fill = (value: (i: number, t: number) => number): Int32Array => {
    const a = new Int32Array(rows * tokens);
    for (let i = 0; i < rows; i++) {
      const n = batch.ids[i]!.length;
      for (let t = 0; t < n; t++) a[i * tokens + t] = value(i, t);
    }
    return a;
  };
  const out: ModelInputs = {};
  for (const input of inputs) {
    const values =
      input.name === 'input_ids' ? fill((i, t) => batch.ids[i]![t]!) : input.name === 'attention_mask' ? fill(() => 1) : fill((i, t) => batch.types[i]![t]!);
    out[input.name] = asDtype(values, input.dtype, [rows, tokens]);
  }
  return { inputs: out, mask, tokens };
}

function asDtype(values: Int32Array, dtype: 'int32' | 'int64', dims: number[]): NamedTensor {
  return dtype === 'int32' ? { dtype, dims, data: values } : { dtype, dims, data: BigInt64Array.from(values, (v) => BigInt(v)) };
}
