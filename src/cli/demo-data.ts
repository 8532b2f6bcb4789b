import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

import { prng } from '../types/prng.js';

export { prng };

const W = 320;
const H = 240;

/** Base pictures, drawn as SVG: different scenes, so their features should differ. */
const BASES: Record<string, string> = {
  sunset: `<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#2b1055"/><stop offset="0.6" stop-color="#ff7e36"/></linearGradient></defs>
    <rect width="${W}" height="${H}" fill="url(#g)"/><circle cx="160" cy="150" r="45" fill="#ffd34e"/><rect y="160" width="${W}" height="80" fill="#0b2a4a"/>
    <path d="M0 175 Q80 165 160 175 T320 175" stroke="#ffb347" stroke-width="3" fill="none"/>`,
  checkers: Array.from({ length: 8 * 6 }, (_, i) => {
    const x = (i % 8) * 40;
    const y = Math.floor(i / 8) * 40;
    return `<rect x="${x}" y="${y}" width="40" height="40" fill="${(i % 8) % 2 === Math.floor(i / 8) % 2 ? '#111' : '#eee'}"/>`;
  }).join(''),
  forest:
    `<rect width="${W}" height="${H}" fill="#87ceeb"/><rect y="190" width="${W}" height="50" fill="#3b7d23"/>` +
    Array.from(
      { length: 7 },
      (_, i) =>
        `<polygon points="${20 + i * 45},200 ${45 + i * 45},${90 + (i % 3) * 15} ${70 + i * 45},200" fill="#1f5f1b"/><rect x="${40 + i * 45}" y="200" width="10" height="20" fill="#5b3a1a"/>`,
    ).join(''),
  target:
    `<rect width="${W}" height="${H}" fill="#fff"/>` +
    Array.from({ length: 6 }, (_, i) => `<circle cx="160" cy="120" r="${110 - i * 18}" fill="${i % 2 ? '#fff' : '#d62828'}"/>`).join(''),
  city:
    `<rect width="${W}" height="${H}" fill="#0a0f2c"/>` +
    Array.from({ length: 8 }, (_, i) => {
      const h = 80 + ((i * 37) % 90);
      const x = i * 40;
      let s = `<rect x="${x + 2}" y="${H - h}" width="36" height="${h}" fill="#1d2540"/>`;
      for (let wy = H - h + 8; wy < H - 8; wy += 16)
        for (let wx = x + 7; wx < x + 34; wx += 10) if ((wx * 7 + wy * 3) % 5 < 3) s += `<rect x="${wx}" y="${wy}" width="5" height="7" fill="#ffe066"/>`;
      return s;
    }).join('') +
    `<circle cx="270" cy="40" r="18" fill="#f5f3ce"/>`,
  stripes:
    `<rect width="${W}" height="${H}" fill="#ffd60a"/>` +
    Array.from({ length: 14 }, (_, i) => `<polygon points="${i * 50 - 240},0 ${i * 50 - 215},0 ${i * 50 + 25},${H} ${i * 50},${H}" fill="#003566"/>`).join(''),
};

/** Variant names, in file order; each is a plausible photo edit of its base. */
const VARIANTS = ['original', 'flip', 'crop', 'bright', 'dark', 'rotate', 'blur', 'noise'] as const;

async function variant(base: Buffer, kind: (typeof VARIANTS)[number], rnd: () => number): Promise<Buffer> {
  let img = sharp(base);
  switch (kind) {
    case 'flip':
      img = img.flop();
      break;
    case 'crop': {
      const cw = Math.round(W * 0.75);
      const ch = Math.round(H * 0.75);
      img = img.extract({ left: Math.floor(rnd() * (W - cw)), top: Math.floor(rnd() * (H - ch)), width: cw, height: ch }).resize(W, H);
      break;
    }
    case 'bright':
      img = img.modulate({ brightness: 1.25 + rnd() * 0.1 });
      break;
    case 'dark':
      img = img.modulate({ brightness: 0.7 - rnd() * 0.1 });
      break;
    case 'rotate':
      img = sharp(await img.rotate(8 + rnd() * 6, { background: '#808080' }).toBuffer()).resize(W, H, { fit: 'cover' });
      break;
    case 'blur':
      img = img.blur(2 + rnd() * 1.5);
      break;
    case 'noise': {
      const raw = await sharp(base).removeAlpha().raw().toBuffer();
      for (let i = 0; i < raw.length; i++) raw[i] = Math.max(0, Math.min(255, raw[i]! + Math.round((rnd() - 0.5) * 60)));
      img = sharp(raw, { raw: { width: W, height: H, channels: 3 } });
      break;
    }
    case 'original':
      break;
  }
  return img.jpeg({ quality: 88 }).toBuffer();
}

/**
 * Write the demo image set: 6 base scenes x 8 edits as `<dir>/<scene>/<edit>.jpg` (48 JPEGs),
 * deterministic, no downloads. Skips the work when the set is already complete.
 */
export async function writeDemoImages(dir: string): Promise<{ dir: string; images: number; written: boolean }> {
  const expected = Object.keys(BASES).length * VARIANTS.length;
  try {
    let n = 0;
    for (const scene of Object.keys(BASES)) n += (await readdir(join(dir, scene))).filter((f) => f.endsWith('.jpg')).length;
    if (n === expected) return { dir, images: n, written: false };
  } catch {
    // not there yet
  }
  let seed = 1;
  for (const [scene, svg] of Object.entries(BASES)) {
    const base = await sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">${svg}</svg>`))
      .removeAlpha()
      .png()
      .toBuffer();
    await mkdir(join(dir, scene), { recursive: true });
    for (const kind of VARIANTS) {
      const rnd = prng(seed++);
      await writeFile(join(dir, scene, `${kind}.jpg`), await variant(base, kind, rnd));
    }
  }
  return { dir, images: expected, written: true };
}
