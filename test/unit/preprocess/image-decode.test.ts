import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import type { ResolvedPreprocess } from '../../../src/config/resolved.js';
import { MAX_INPUT_PIXELS, decodeImage, decodeImagesInto } from '../../../src/preprocess/index.js';
import { bombPng } from '../../helpers/images.js';

function pre(over: Partial<ResolvedPreprocess> = {}): ResolvedPreprocess {
  return { size: [4, 4], fit: 'cover', layout: 'nhwc', channels: 3, mean: [0, 0, 0], std: [1, 1, 1], ...over };
}

function solid(width: number, height: number, r: number, g: number, b: number): Sharp {
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } });
}

/** Raw RGB image from a pixel function, encoded losslessly as PNG. */
async function pngFrom(width: number, height: number, px: (x: number, y: number) => [number, number, number]): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(px(x, y), (y * width + x) * 3);
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** Value of channel c at (y, x) in an output of the given layout. */
function at(out: Float32Array, p: ResolvedPreprocess, y: number, x: number, c: number): number {
  const [h, w] = p.size;
  const i = p.layout === 'nhwc' ? (y * w + x) * p.channels + c : c * h * w + y * w + x;
  return out[i] as number;
}

describe('decodeImage', () => {
  it.each(['nhwc', 'nchw'] as const)('solid red PNG with range [0,1] gives channel 0 = 1, others 0 (%s)', async (layout) => {
    const png = await solid(10, 8, 255, 0, 0).png().toBuffer();
    const p = pre({ layout });
    const out = await decodeImage(png, p);
    expect(out).toHaveLength(4 * 4 * 3);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        expect([at(out, p, y, x, 0), at(out, p, y, x, 1), at(out, p, y, x, 2)]).toEqual([1, 0, 0]);
      }
    }
    if (layout === 'nchw') {
      expect(Array.from(out.subarray(0, 16))).toEqual(new Array(16).fill(1));
      expect(Array.from(out.subarray(16))).toEqual(new Array(32).fill(0));
    } else {
      expect(Array.from(out.subarray(0, 6))).toEqual([1, 0, 0, 1, 0, 0]);
    }
  });

  it('applies (p/255 - mean) / std per channel', async () => {
    const png = await solid(6, 6, 128, 64, 255).png().toBuffer();
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const out = await decodeImage(png, pre({ mean, std }));
    const expected = [128, 64, 255].map((v, c) => Math.fround((v / 255 - (mean[c] as number)) / (std[c] as number)));
    expect(Array.from(out.subarray(0, 3))).toEqual(expected);
    expect(out[3 * 15 + 2]).toBe(expected[2]);
  });

  it('maps range [-1, 1] (mean 0.5, std 0.5) to -1 and 1', async () => {
    const png = await solid(5, 5, 0, 255, 0).png().toBuffer();
    const out = await decodeImage(png, pre({ mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }));
    expect(Array.from(out.subarray(0, 3))).toEqual([-1, 1, -1]);
  });

  it('decodes a JPEG to near its colour', async () => {
    const jpg = await solid(16, 16, 200, 100, 50).jpeg({ quality: 95 }).toBuffer();
    const out = await decodeImage(jpg, pre());
    const px = Array.from(out.subarray(0, 3));
    [200, 100, 50].forEach((v, c) => expect(Math.abs((px[c] as number) - v / 255)).toBeLessThan(3 / 255));
  });

  it('converts a grayscale PNG to 3 equal channels, or keeps 1 channel when asked', async () => {
    const gray = await solid(8, 8, 128, 128, 128).toColourspace('b-w').png().toBuffer();
    expect((await sharp(gray).metadata()).channels).toBe(1);
    const rgb = await decodeImage(gray, pre());
    expect(Array.from(rgb.subarray(0, 3))).toEqual([128 / 255, 128 / 255, 128 / 255].map(Math.fround));
    const one = await decodeImage(gray, pre({ channels: 1, mean: [0], std: [1] }));
    expect(one).toHaveLength(16);
    expect(one[5]).toBe(Math.fround(128 / 255));
  });

  it('flattens transparency onto white (RGBA input)', async () => {
    const rgba = await sharp({ create: { width: 6, height: 6, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0 } } })
      .png()
      .toBuffer();
    const out = await decodeImage(rgba, pre());
    expect(Array.from(out.subarray(0, 3))).toEqual([1, 1, 1]);
    const opaque = await sharp({ create: { width: 6, height: 6, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 1 } } })
      .png()
      .toBuffer();
    expect(Array.from((await decodeImage(opaque, pre())).subarray(0, 3))).toEqual([0, 0, 1]);
  });

  it('converts a 16-bit PNG to 8-bit values', async () => {
    const png16 = await solid(6, 6, 0, 255, 0).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const out = await decodeImage(png16, pre());
    expect(Array.from(out.subarray(0, 3))).toEqual([0, 1, 0]);
  });

  it('lays out HWC and CHW exactly when no resampling happens', async () => {
    // 3 wide x 2 tall, each pixel unique: r = 10*y + x, g = 100 + r, b = 200 + r
    const png = await pngFrom(3, 2, (x, y) => [10 * y + x, 100 + 10 * y + x, 200 + 10 * y + x]);
    const base = { size: [2, 3] as [number, number], fit: 'fill' as const, mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] };
    const hwc = await decodeImage(png, pre({ ...base, layout: 'nhwc' }));
    const chw = await decodeImage(png, pre({ ...base, layout: 'nchw' }));
    expect(Array.from(hwc).map(Math.round)).toEqual([0, 100, 200, 1, 101, 201, 2, 102, 202, 10, 110, 210, 11, 111, 211, 12, 112, 212]);
    expect(Array.from(chw).map(Math.round)).toEqual([0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112, 200, 201, 202, 210, 211, 212]);
  });

  it('cover crops the centre, contain letterboxes in black, fill stretches', async () => {
    // 20 wide x 10 tall: left half red, right half blue
    const png = await pngFrom(20, 10, (x) => (x < 10 ? [255, 0, 0] : [0, 0, 255]));
    const square = { size: [10, 10] as [number, number] };

    const cover = await decodeImage(png, pre({ ...square, fit: 'cover' }));
    const pc = pre({ ...square });
    expect(at(cover, pc, 5, 0, 0)).toBeCloseTo(1, 2);
    expect(at(cover, pc, 5, 9, 2)).toBeCloseTo(1, 2);
    expect(at(cover, pc, 0, 0, 0)).toBeCloseTo(1, 2); // no letterbox rows

    const contain = await decodeImage(png, pre({ ...square, fit: 'contain' }));
    expect([0, 1, 2].map((c) => at(contain, pc, 0, 5, c))).toEqual([0, 0, 0]);
    expect([0, 1, 2].map((c) => at(contain, pc, 9, 5, c))).toEqual([0, 0, 0]);
    expect(at(contain, pc, 5, 0, 0)).toBeCloseTo(1, 2);
    expect(at(contain, pc, 5, 9, 2)).toBeCloseTo(1, 2);

    const fill = await decodeImage(png, pre({ size: [4, 8], fit: 'fill' }));
    const pf = pre({ size: [4, 8] });
    expect(at(fill, pf, 0, 0, 0)).toBeCloseTo(1, 2);
    expect(at(fill, pf, 3, 7, 2)).toBeCloseTo(1, 2);
  });

  it('auto-orients by EXIF orientation', async () => {
    // stored 20 wide x 10 tall with left half red; orientation 6 means "rotate 90° clockwise to view"
    const raw = await pngFrom(20, 10, (x) => (x < 10 ? [255, 0, 0] : [0, 0, 255]));
    const jpg = await sharp(raw).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpg).metadata()).orientation).toBe(6);
    const p = pre({ size: [20, 10], fit: 'fill' });
    const out = await decodeImage(jpg, p);
    // viewed upright the image is 10 wide x 20 tall, red on top
    expect(at(out, p, 2, 5, 0)).toBeGreaterThan(0.9);
    expect(at(out, p, 17, 5, 2)).toBeGreaterThan(0.9);
  });

  it('rejects corrupt bytes, empty files and text with clear messages', async () => {
    await expect(decodeImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), pre())).rejects.toThrow(/not a decodable image/);
    await expect(decodeImage(new Uint8Array(0), pre())).rejects.toThrow(/empty \(0 bytes\)/);
    await expect(decodeImage(Buffer.from('this is a text file named photo.jpg\n'), pre())).rejects.toThrow(
      /not a decodable image: unsupported or unrecognised image format/,
    );
    const png = await solid(50, 50, 10, 20, 30).png().toBuffer();
    await expect(decodeImage(png.subarray(0, png.length / 2), pre())).rejects.toThrow(/not a decodable image/);
  });

  it.each([
    // above our limit but below sharp's own default (0x3FFF^2), so only MAX_INPUT_PIXELS stops it
    [12000, 12000],
    [30000, 30000],
  ])('rejects a decompression bomb (%ix%i) from its header, quickly and without allocating it', async (w, h) => {
    const bomb = bombPng(w, h);
    expect(bomb.length).toBeLessThan(1000);
    expect(w * h).toBeGreaterThan(MAX_INPUT_PIXELS);
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    await expect(decodeImage(bomb, pre())).rejects.toThrow(/too large.*decompression bomb/);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
  });

  it('rejects preprocess with the wrong number of mean values', async () => {
    const png = await solid(4, 4, 0, 0, 0).png().toBuffer();
    await expect(decodeImage(png, pre({ mean: [0, 0] }))).rejects.toThrow(/preprocess\.mean has 2 values/);
  });
});

describe('decodeImagesInto', () => {
  it('fills a batch in place and reports the rows that failed', async () => {
    const red = await solid(8, 8, 255, 0, 0).png().toBuffer();
    const blue = await solid(8, 8, 0, 0, 255).png().toBuffer();
    const p = pre({ size: [2, 2] });
    const out = new Float32Array(3 * 12).fill(7);
    const failures = await decodeImagesInto([red, Buffer.from('nope'), blue], p, out);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.index).toBe(1);
    expect(failures[0]?.message).toMatch(/not a decodable image/);
    expect(Array.from(out.subarray(0, 3))).toEqual([1, 0, 0]);
    expect(Array.from(out.subarray(12, 24))).toEqual(new Array(12).fill(0));
    expect(Array.from(out.subarray(24, 27))).toEqual([0, 0, 1]);
  });
});
