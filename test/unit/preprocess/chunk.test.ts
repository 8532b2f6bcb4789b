import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TextChunker, type TextChunk } from '../../../src/preprocess/chunk.js';
import { TextTokenizer } from '../../../src/preprocess/tokenize.js';
import { TEXT_DIR } from '../../helpers/models.js';

function tokenizer(prefix = ''): TextTokenizer {
  return new TextTokenizer({
    tokenizer: path.join(TEXT_DIR, 'tokenizer.json'),
    tokenizerConfig: path.join(TEXT_DIR, 'tokenizer_config.json'),
    maxLength: 32,
    prefix,
  });
}

/** Each chunk's tokens as the pool would embed it alone (prefix and special tokens included). */
function alone(tok: TextTokenizer, text: string, c: TextChunk): number {
  return tok.encode([text.slice(c.from, c.to)]).ids[0]!.length;
}

/** Chunks cover the text in order, each fits, offsets in code points agree with the code units. */
function expectCover(tok: TextTokenizer, text: string, chunks: TextChunk[], tokens: number): void {
  const points = Array.from(text);
  expect(chunks[0]!.start).toBe(0);
  expect(chunks.at(-1)!.end).toBe(points.length);
  chunks.forEach((c, k) => {
    expect(c.chunk).toBe(k);
    expect(points.slice(c.start, c.end).join('')).toBe(text.slice(c.from, c.to));
    expect(c.tokens).toBe(alone(tok, text, c));
    expect(c.tokens).toBeLessThanOrEqual(tokens);
    if (k > 0) {
      expect(c.from).toBeGreaterThan(chunks[k - 1]!.from);
      expect(c.from).toBeLessThanOrEqual(chunks[k - 1]!.to);
    }
  });
}

describe('TextChunker on the fixture tokenizer', () => {
  const tok = tokenizer();

  it('gives a short or empty text one chunk, its whole text', () => {
    const ch = new TextChunker(tok, '', { tokens: 16, overlap: 0 });
    expect(ch.split('')).toEqual([{ chunk: 0, from: 0, to: 0, start: 0, end: 0, tokens: 2 }]);
    expect(ch.split('The cat sat.')).toEqual([
      { chunk: 0, from: 0, to: 12, start: 0, end: 12, tokens: alone(tok, 'The cat sat.', { from: 0, to: 12 } as TextChunk) },
    ]);
  });

  it('cuts before a space that ends a word, chunks without overlap meeting end to start', () => {
    const text = 'The cat sat on the mat. A dog ran to the park in the morning. Hooks keep the output of a middle layer for every token.';
    const chunks = new TextChunker(tok, '', { tokens: 12, overlap: 0 }).split(text);
    expect(chunks.length).toBeGreaterThan(2);
    expectCover(tok, text, chunks, 12);
    for (const c of chunks.slice(1)) {
      expect(text[c.from]).toBe(' ');
      expect(text[c.from - 1]).not.toBe(' ');
      expect(c.from).toBe(chunks[c.chunk - 1]!.to);
    }
  });

  it('shares the last whole words of a chunk, up to overlap tokens, with the next', () => {
    // every word of this text is one token of the fixture's vocabulary
    const words = 'the cat sat on the mat the dog ran to the park in the morning the cat sat on the mat'.split(' ');
    const text = words.join(' ');
    expect(tok.countTokens(text)).toBe(words.length);
    const chunks = new TextChunker(tok, '', { tokens: 10, overlap: 3 }).split(text);
    expectCover(tok, text, chunks, 10);
    // 8 words a chunk ([CLS] and [SEP] besides), the next one starting 3 words back
    expect(chunks.map((c) => text.slice(c.from, c.to).trim().split(' ').length)).toEqual([8, 8, 8, 6]);
    expect(chunks.map((c) => c.tokens)).toEqual([10, 10, 10, 8]);
    for (const c of chunks.slice(1))
      expect(
        text
          .slice(c.from, chunks[c.chunk - 1]!.to)
          .trim()
          .split(' '),
      ).toHaveLength(3);
  });

  it('cuts a run without spaces between code points, never inside a surrogate pair', () => {
    const cjk = '中间层输出'.repeat(8);
    const chunks = new TextChunker(tok, '', { tokens: 8, overlap: 2 }).split(cjk);
    expectCover(tok, cjk, chunks, 8);
    // each CJK character is a token: 6 a chunk, cut where the one before ended
    expect(chunks.map((c) => c.end - c.start)).toEqual([6, 6, 6, 6, 6, 6, 4]);
    const emoji = `go ${'🙂'.repeat(20)} go`;
    const e = new TextChunker(tok, '', { tokens: 6, overlap: 0 }).split(emoji);
    expectCover(tok, emoji, e, 6);
    for (const c of e) {
      expect(emoji.codePointAt(c.from)).not.toBe(undefined);
      // a chunk that starts inside the emoji run starts on a high surrogate
      const unit = emoji.charCodeAt(c.from);
      expect(unit >= 0xdc00 && unit <= 0xdfff).toBe(false);
    }
  });

  it('counts the prefix in each chunk, as the pool embeds it', () => {
    const withPrefix = tokenizer('query: ');
    const text = 'the cat sat on the mat the dog ran to the park in the morning';
    const chunks = new TextChunker(withPrefix, 'query: ', { tokens: 10, overlap: 0 }).split(text);
    expectCover(withPrefix, text, chunks, 10);
    expect(chunks.length).toBeGreaterThan(2);
  });

  it('counts a chunk whole when words may not add up: a prefix that does not end in a space', () => {
    const withPrefix = tokenizer('query:');
    expect(withPrefix.additive).toBe(true);
    const text = 'the cat sat on the mat the dog ran to the park in the morning 中间层输出中间层输出';
    const chunks = new TextChunker(withPrefix, 'query:', { tokens: 9, overlap: 2 }).split(text);
    expectCover(withPrefix, text, chunks, 9);
    expect(chunks.length).toBeGreaterThan(3);
  });

  it('takes BERT-style tokenizers as adding up word by word, and others not', async () => {
    expect(tok.additive).toBe(true);
    const { readFileSync, writeFileSync } = await import('node:fs');
    const { tempDir } = await import('../../helpers/models.js');
    const json = JSON.parse(readFileSync(path.join(TEXT_DIR, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    const variant = (change: Record<string, unknown>): boolean => {
      const file = path.join(tempDir(), 'tokenizer.json');
      writeFileSync(file, JSON.stringify({ ...json, ...change }));
      return new TextTokenizer({ tokenizer: file, maxLength: 32, prefix: '' }).additive;
    };
    expect(variant({ pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }] } })).toBe(true);
    expect(variant({ pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always' } })).toBe(false);
    expect(variant({ normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '' } })).toBe(false);
    expect(variant({ pre_tokenizer: null })).toBe(false);
  });
});
