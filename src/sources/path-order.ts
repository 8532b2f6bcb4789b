/**
 * Compares strings by Unicode code point, which is the same order as their UTF-8 bytes.
 * Plain `<` on JS strings compares UTF-16 code units and would put astral characters
 * (emoji, rare CJK) before U+E000..U+FFFF, unlike `LC_ALL=C sort`, Python or S3 listings.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) return fixup(x) - fixup(y);
      return x - y;
    }
  }
  return a.length - b.length;
}

/** Moves surrogates above U+E000..U+FFFF so code-unit order becomes code-point order. */
function fixup(c: number): number {
  if (c >= 0xe000) return c - 0x800;
  return c + 0x2000;
}
