import sharp from 'sharp';
import type { OutputInfo } from 'sharp';
import type { ResolvedPreprocess } from '../config/resolved.js';

/**
 * Largest input accepted, in pixels (width x height, read from the file header before any
 * pixel is decoded). 100 MP is far above any photo a model is fed, yet bounds a decompression
 * bomb to a few hundred MB instead of tens of GB.
 */
export const MAX_INPUT_PIXELS = 100_000_000;

/** A row of a batch that failed to decode, by its index in the batch. */
export interface DecodeFailure {
  index: number;
  message: string;
}

/** Number of floats one decoded image occupies: height * width * channels. */
export function decodedLength(pre: ResolvedPreprocess): number {
  return pre.size[0] * pre.size[1] * pre.channels;
}

/** Decodes, orients, resizes and normalises one encoded image into a new Float32Array laid out as `pre.layout`. */
export async function decodeImage(bytes: Uint8Array, pre: ResolvedPreprocess): Promise<Float32Array> {
  const out = new Float32Array(decodedLength(pre));
  await decodeImageInto(bytes, pre, out, 0);
  return out;
}

/**
 * Decodes one image into `out` starting at element `offset` (so a batch can be filled in
 * place without an intermediate array per image). Throws an Error saying what is wrong.
 */
export async function decodeImageInto(bytes: Uint8Array, pre: ResolvedPreprocess, out: Float32Array, offset: number): Promise<void> {
  const [height, width] = pre.size;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new Error(`preprocess.size must be [height, width] in positive integers, got ${JSON.stringify(pre.size)}`);
  }
  const channels = pre.channels;
  const len = height * width * channels;
  if (offset < 0 || offset + len > out.length) {
    throw new RangeError(`decodeImageInto: output has ${out.length} floats, image needs ${len} at offset ${offset}`);
  }
  const lut = normalisationTable(pre);
  if (bytes.byteLength === 0) throw new Error('not a decodable image: the file is empty (0 bytes)');

  let raw: { data: Uint8Array; info: OutputInfo };
  try {
    let pipeline = sharp(bytes, {
      limitInputPixels: MAX_INPUT_PIXELS,
      // 'error' still rejects truncated files but tolerates the benign warnings many real JPEGs carry
      failOn: 'error',
      sequentialRead: true,
    })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .resize({
        width,
        height,
        fit: pre.fit,
        position: 'centre',
        background: { r: 0, g: 0, b: 0, alpha: 1 },
      });
    pipeline = channels === 1 ? pipeline.greyscale().toColourspace('b-w') : pipeline.toColourspace('srgb');
    raw = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new Error(describeSharpError(err), { cause: err });
  }

  const { data, info } = raw;
  if (info.width !== width || info.height !== height) {
    throw new Error(`image decoded to ${info.width}x${info.height}, expected ${width}x${height} (fit ${pre.fit})`);
  }
  const srcC = info.channels;
  if (data.length !== width * height * srcC) {
    throw new Error(`image decoded to ${data.length} bytes, expected ${width * height * srcC} (8-bit, ${srcC} channels)`);
  }
  writeNormalised(data, srcC, width * height, channels, pre.layout, lut, out, offset);
}

/**
 * Decodes a batch of images into `out` ([files.length, ...] in `pre.layout`), all in flight at
 * once (sharp runs them on libuv's thread pool). A failed image leaves zeros in its slot and is
 * reported; the others are unaffected.
 */
export async function decodeImagesInto(files: readonly Uint8Array[], pre: ResolvedPreprocess, out: Float32Array): Promise<DecodeFailure[]> {
  const len = decodedLength(pre);
  if (out.length < files.length * len) {
    throw new RangeError(`decodeImagesInto: output has ${out.length} floats, ${files.length} images need ${files.length * len}`);
  }
  const results = await Promise.allSettled(files.map((bytes, i) => decodeImageInto(bytes, pre, out, i * len)));
  const failures: DecodeFailure[] = [];
  results.forEach((r, index) => {
    if (r.status === 'rejected') {
      out.fill(0, index * len, (index + 1) * len);
      failures.push({ index, message: r.reason instanceof Error ? r.reason.message : String(r.reason) });
    }
  });
  return failures;
}

/**
 * value = (p / 255 - mean[c]) / std[c] for every byte p and channel c, precomputed so the pixel
 * loop is one table lookup per value and the result is exactly that formula rounded to float32.
 */
function normalisationTable(pre: ResolvedPreprocess): Float32Array {
  let lut = tables.get(pre);
  if (!lut) {
    lut = buildTable(pre);
    tables.set(pre, lut);
  }
  return lut;
}

/** One table per preprocess object: a batch shares its `pre`, so the table is built once per batch. */
const tables = new WeakMap<ResolvedPreprocess, Float32Array>();

function buildTable(pre: ResolvedPreprocess): Float32Array {
  const c = pre.channels;
  const mean = perChannel(pre.mean, c, 'mean');
  const std = perChannel(pre.std, c, 'std');
  const lut = new Float32Array(256 * c);
  for (let ch = 0; ch < c; ch++) {
    const m = mean[ch] as number;
    const s = std[ch] as number;
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new Error(`preprocess.std[${ch}] must be a positive number, got ${s}`);
    }
    for (let p = 0; p < 256; p++) lut[ch * 256 + p] = (p / 255 - m) / s;
  }
  return lut;
}

function perChannel(values: readonly number[], channels: number, field: string): readonly number[] {
  if (values.length === channels) return values;
  if (values.length === 1) return new Array<number>(channels).fill(values[0] as number);
  throw new Error(`preprocess.${field} has ${values.length} values but the model takes ${channels} channel(s)`);
}

/** One pass over the pixels: pick/replicate channels, normalise via the table, write HWC or CHW. */
function writeNormalised(
  src: Uint8Array,
  srcC: number,
  pixels: number,
  dstC: number,
  layout: 'nhwc' | 'nchw',
  lut: Float32Array,
  out: Float32Array,
  offset: number,
): void {
  if (layout === 'nhwc') {
    if (srcC === 3 && dstC === 3) {
      // the common case unrolled: no per-value channel arithmetic
      for (let i = 0, o = offset; i < pixels * 3; i += 3, o += 3) {
        out[o] = lut[src[i] as number] as number;
        out[o + 1] = lut[256 | (src[i + 1] as number)] as number;
        out[o + 2] = lut[512 | (src[i + 2] as number)] as number;
      }
      return;
    }
    if (srcC === dstC) {
      for (let i = 0, o = offset; i < pixels * dstC; i++, o++) {
        out[o] = lut[((i % dstC) << 8) | (src[i] as number)] as number;
      }
      return;
    }
    for (let px = 0, o = offset; px < pixels; px++) {
      const base = px * srcC;
      for (let ch = 0; ch < dstC; ch++, o++) {
        // a grey source feeding an RGB model repeats its one channel
        const s = src[base + (ch < srcC ? ch : 0)] as number;
        out[o] = lut[(ch << 8) | s] as number;
      }
    }
    return;
  }
  // channel-major: every plane written in order, which halves the time of a pixel-major loop
  // whose writes jump between planes (0.5 against 1.0 ms per 224x224 image)
  if (srcC === 3 && dstC === 3) {
    const o1 = offset + pixels;
    const o2 = offset + 2 * pixels;
    for (let px = 0, i = 0; px < pixels; px++, i += 3) {
      out[offset + px] = lut[src[i] as number] as number;
      out[o1 + px] = lut[256 | (src[i + 1] as number)] as number;
      out[o2 + px] = lut[512 | (src[i + 2] as number)] as number;
    }
    return;
  }
  for (let ch = 0; ch < dstC; ch++) {
    const plane = offset + ch * pixels;
    const table = ch << 8;
    // a grey source feeding an RGB model repeats its one channel
    for (let px = 0, i = ch < srcC ? ch : 0; px < pixels; px++, i += srcC) out[plane + px] = lut[table | (src[i] as number)] as number;
  }
}

function describeSharpError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(msg)) {
    return `image is too large: more than ${MAX_INPUT_PIXELS} pixels (possible decompression bomb): ${msg}`;
  }
  if (/unsupported image format/i.test(msg)) {
    return 'not a decodable image: unsupported or unrecognised image format';
  }
  return `not a decodable image: ${msg.trim()}`;
}
