import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { prng } from '../../../src/cli/demo-data.js';
import { TextTokenizer } from '../../../src/preprocess/tokenize.js';
import { tempDir } from '../../helpers/index.js';
import { TEXT_DIR } from '../../helpers/models.js';

const TEXT = TEXT_DIR;
const ENGLISH = Object.keys(
  (JSON.parse(readFileSync(join(TEXT, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab,
).filter((w) => /^[a-z]{2,}$/.test(w));

/** GPT-2's map of bytes to printable characters, which byte-level BPE vocabularies are written in. */
function bytesToUnicode(): string[] {
  const out: string[] = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return out;
}

/** A byte-level BPE tokenizer (GPT-2 style: NFC, the byte-level regex, no special tokens around a text) with merges for the fixture's English words. */
function byteLevelBpe(): object {
  const alphabet = bytesToUnicode();
  const vocab: Record<string, number> = {};
  for (const c of alphabet) vocab[c] = Object.keys(vocab).length;
  const merges: string[] = [];
  for (const word of ENGLISH.flatMap((w) => [w, `\u0120${w}`])) {
    let piece = word[0]!;
    for (const c of word.slice(1)) {
      const merged = piece + c;
      if (vocab[merged] === undefined) {
        merges.push(`${piece} ${c}`);
        vocab[merged] = Object.keys(vocab).length;
      }
      piece = merged;
    }
  }
  // runs of x as tokens of up to 1024 characters: a row of few tokens for its length, so cuts matter
  for (let run = 'x'; run.length < 1024; run += run) {
    merges.push(`${run} ${run}`);
    vocab[run + run] = Object.keys(vocab).length;
  }
  const eot = Object.keys(vocab).length;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eot, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** A SentencePiece-style Unigram tokenizer (T5 style: NFKC, Metaspace, `</s>` after a text) over the fixture's English words. */
function metaspaceUnigram(): object {
  const vocab: Array<[string, number]> = [
    ['<pad>', 0],
    ['</s>', 0],
    ['<unk>', 0],
    ['\u2581', -2],
  ];
  for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789.,:/-!?中间层输出') vocab.push([c, -6]);
  for (const w of ENGLISH) vocab.push([`\u2581${w}`, -3 - w.length / 10], [w, -4.5]);
  for (const s of ['ing', 'ed', 'er', 'tion', 'ness']) vocab.push([s, -4]);
  for (let run = 'xx'; run.length <= 1024; run += run) vocab.push([run, -5]);
  const special = (id: number, content: string): object => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<pad>'), special(1, '</s>'), special(2, '<unk>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: false },
  };
}

const CJK = '中间层输出钩子模型特征文字';
const EMOJI = ['\u{1F600}', '\u{1F680}', '\u{1F9E0}'];

/**
 * A run of one character longer than 8 first cuts. A Unigram model can split such a run in
 * several ways of the same score, and which one it takes depends on the run's full length: the
 * cut row's tokens differ (see README, Text models); the other models give the same.
 */
const REPEATED = 'x'.repeat(10_000);

/** One piece of text: mostly words and single spaces, sometimes what makes cutting hard. */
function piece(rand: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const r = rand();
  if (r < 0.55) return `${pick(ENGLISH)}${rand() < 0.1 ? pick(['.', ',', '!', '?']) : ''} `;
  if (r < 0.62) return `${pick(ENGLISH).toUpperCase()}${pick(['e\u0301', '\u00e9', '\uFB01', '\u2460', '\uFF21'])}${pick(ENGLISH)} `; // accents, NFKC/NFC rewrites
  if (r < 0.67) return Array.from({ length: 1 + Math.floor(rand() * 40) }, () => pick([...CJK])).join(''); // no spaces
  if (r < 0.71) return Array.from({ length: 1 + Math.floor(rand() * 30) }, () => pick(EMOJI)).join(''); // surrogate pairs
  if (r < 0.75) return pick([' ', '\n', '\t', '\u3000', '\u00a0', '  ']).repeat(1 + Math.floor(rand() * (rand() < 0.2 ? 1500 : 6))); // whitespace runs
  if (r < 0.8) return 'ab'.repeat(40 + Math.floor(rand() * 30)) + ' '; // words about as long as WordPiece's 100-character limit
  if (r < 0.83) return `https://example.com/${Array.from({ length: 10 + Math.floor(rand() * 300) }, () => pick(ENGLISH)).join('/')}?q=${pick(ENGLISH)} `; // a long URL
  if (r < 0.86) return pick(['[MASK]', '[SEP]', '<|endoftext|>', '</s>']) + (rand() < 0.5 ? ' ' : '');
  if (r < 0.88) return 'x'.repeat(200 + Math.floor(rand() * 3000)); // one long word
  return `${Array.from({ length: 1 + Math.floor(rand() * 8) }, () => pick([...'abcdefghijklmnopqrstuvwxyz0123456789'])).join('')} `;
}

/** Texts of random lengths (up to about 20 000 characters, so rows longer than any first cut), from one seed. */
function texts(seed: number, count: number): string[] {
  const rand = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const target = rand() < 0.15 ? Math.floor(rand() * 200) : rand() < 0.85 ? 1000 + Math.floor(rand() * 2500) : 8000 + Math.floor(rand() * 12000);
    let t = '';
    while (t.length < target) t += piece(rand);
    out.push(t);
  }
  return out;
}

/** Texts built to put what is hard to cut at the first cuts (1024 and 2048 characters in). */
function edgeTexts(): string[] {
  const words = (n: number): string => Array.from({ length: n }, (_, i) => ENGLISH[(i * 7) % ENGLISH.length]).join(' ');
  const around = (at: number, hard: string, before = 1000): string =>
    ' '.repeat(before) + 'x'.repeat(Math.max(0, at - before - hard.length / 2)) + hard + ' ' + words(400);
  return [
    ' '.repeat(1000) + 'ab'.repeat(100) + ' ' + words(300), // a 200-character word ([UNK] whole) split by the first cut
    ' '.repeat(1000) + 'ab'.repeat(45) + ' ' + words(300), // a 90-character word split by the first cut
    ' '.repeat(1990) + 'ab'.repeat(45) + ' ' + words(300), // ... and by the second
    'a'.repeat(5000),
    CJK.repeat(200),
    'x' + EMOJI[0]!.repeat(600), // the cut falls between the two halves of a surrogate pair
    '\n'.repeat(3000) + words(200), // whitespace longer than a cut
    words(170).slice(0, 1020) + '[MASK]' + words(300), // an added token cut in two
    words(170).slice(0, 1022) + 'e\u0301\u0301' + words(300), // combining marks at the cut
    around(1024, 'https://example.com/' + words(30).replace(/ /g, '/')),
    words(3000),
    'the cat sat ' + 'x'.repeat(2137) + ' ' + words(300), // a run of one character across the first two cuts
    // stretches without spaces longer than 8 first cuts: cut inside
    'https://example.com/' + ('ab'.repeat(60) + '/').repeat(70), // of words WordPiece makes [UNK] whole
    words(20) + ' ' + CJK.repeat(700),
    'x' + EMOJI[1]!.repeat(4200),
    REPEATED,
  ];
}

interface Case {
  name: string;
  /** the tokenizer file's JSON, or null for the fixture's */
  json: (() => object) | null;
  /** special tokens before the text */
  before: number;
  /** special tokens around the text */
  specials: number;
  /** the maxLengths checked */
  maxLengths: number[];
  /** whether a run of one character longer than any cut gives the same tokens cut (see {@link REPEATED}) */
  runs: boolean;
}

const EVERY = [...Array.from({ length: 40 }, (_, i) => i + 1), 512];
const CASES: Case[] = [
  { name: 'WordPiece, the fixture: BERT normalizer, [CLS] ... [SEP]', json: null, before: 1, specials: 2, maxLengths: EVERY, runs: true },
  { name: 'byte-level BPE: NFC, no special tokens', json: byteLevelBpe, before: 0, specials: 0, maxLengths: EVERY, runs: true },
  // its lattice over a whole text is slow in @huggingface/tokenizers: fewer lengths
  { name: 'Unigram: NFKC, Metaspace, ... </s>', json: metaspaceUnigram, before: 0, specials: 1, maxLengths: [1, 2, 3, 6, 17, 40, 512], runs: false },
];

describe('cutting a long row before tokenizing it', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(async () => {
    await tmp.remove();
  });

  it.each(CASES)(
    'gives the ids and truncated count of tokenizing the whole text and cutting it ($name)',
    ({ name, json, before, specials, maxLengths, runs }) => {
      const all = [...texts(20240611, 14), ...edgeTexts().filter((t) => runs || t !== REPEATED)];
      let file = join(TEXT, 'tokenizer.json');
      if (json) writeFileSync((file = join(tmp.dir, `${name.split(':')[0]!.replace(/\W+/g, '-')}.json`)), JSON.stringify(json()));
      const reference = new Tokenizer(JSON.parse(readFileSync(file, 'utf8')) as object, {});
      // a prefix is cut with the text: checked at a few lengths
      const prefixes = ['', 'query: '];
      const prefixed = new Set([5, 512]);
      const whole = prefixes.map((prefix) =>
        all.map((t) => ({ content: reference.encode(prefix + t, { add_special_tokens: false }).ids, full: reference.encode(prefix + t).ids })),
      );
      // most rows are longer than the first cut, not tokenized whole
      expect(all.filter((t) => t.length > 1024).length).toBeGreaterThan(18);
      let compared = 0;
      for (const maxLength of maxLengths) {
        if (maxLength <= specials) {
          expect(() => new TextTokenizer({ tokenizer: file, maxLength, prefix: '' })).toThrow(
            `tokenizer ${file} with maxLength ${maxLength} leaves no room for text besides the ${specials} special tokens`,
          );
          continue;
        }
        const room = maxLength - specials;
        prefixes.forEach((prefix, p) => {
          if (p > 0 && !prefixed.has(maxLength)) return;
          const tok = new TextTokenizer({ tokenizer: file, maxLength, prefix });
          all.forEach((text, i) => {
            const { content, full } = whole[p]![i]!;
            const expected = [...full.slice(0, before), ...content.slice(0, room), ...full.slice(before + content.length)];
            const got = tok.encode([text]);
            const where = `maxLength ${maxLength}, prefix '${prefix}', text ${i} (${text.length} characters)`;
            expect([...got.ids[0]!], where).toEqual(expected);
            expect(got.truncated, where).toBe(content.length > room ? 1 : 0);
            compared++;
          });
        });
      }
      const lengths = maxLengths.filter((m) => m > specials);
      expect(compared).toBe(all.length * (lengths.length + lengths.filter((m) => prefixed.has(m)).length));
    },
    180_000,
  );

  describe('what a long row costs', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    /** Characters handed to the tokenizer to encode `text`, and the ids got. */
    function cost(text: string, maxLength: number): { chars: number; ids: number[] } {
      const encode = vi.spyOn(Tokenizer.prototype, 'encode');
      const tok = new TextTokenizer({ tokenizer: join(TEXT, 'tokenizer.json'), maxLength, prefix: '' });
      const got = tok.encode([text]);
      const chars = (encode.mock.calls as Array<[string, ...unknown[]]>).reduce((n, [t]) => n + t.length, 0);
      encode.mockRestore();
      expect(got.truncated).toBe(1);
      return { chars, ids: [...got.ids[0]!] };
    }

    it('follows maxLength, not the length of the row', () => {
      const words = (n: number): string => Array.from({ length: n }, (_, i) => ENGLISH[(i * 7) % ENGLISH.length]).join(' ');
      const row = words(600_000); // about 4 MB
      const short = cost(row.slice(0, 1_000_000), 32);
      const long = cost(row, 32);
      expect(long.ids).toEqual(short.ids);
      // the same few KB whatever the row's length: the two cuts compared (and the template's probes)
      expect(long.chars).toBe(short.chars);
      expect(long.chars).toBeLessThan(4 * 1024);
      expect(cost(row, 512).chars).toBeLessThan(3 * 512 * 16 + 1024);
    });
  });
});
