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

  constructor(private readonly text: Pick<ResolvedText, 'tokenizer' | 'tokenizerConfig' | 'maxLength' | 'prefix'>) {
    const json = readJson(text.tokenizer);
    const config = text.tokenizerConfig !== undefined ? readJson(text.tokenizerConfig) : {};
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
      const content: number[] = this.tokenizer.encode(this.text.prefix + text, { add_special_tokens: false }).ids;
      if (content.length > room) out.truncated++;
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
