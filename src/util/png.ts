/** Lossless 8-bit PNG files from [0, 1] images, written atomically. */
import sharp from 'sharp';
import { writeFileAtomic } from './fs.js';

/** Rounds a [0, 1] value to an 8-bit level (clipped). */
export const toUint8 = (v: number): number => Math.max(0, Math.min(255, Math.round(v * 255)));

/** Writes one HWC image of [0, 1] floats as an 8-bit PNG (grey or RGB). */
export async function writePng(file: string, pixels: Float32Array, shape: readonly [number, number, number]): Promise<void> {
  const [h, w, c] = shape;
  const raw = Buffer.alloc(h * w * c);
  for (let i = 0; i < raw.length; i++) raw[i] = toUint8(pixels[i]!);
  const png = await sharp(raw, { raw: { width: w, height: h, channels: c as 1 | 3 } }).png({ compressionLevel: 9 }).toBuffer();
  await writeFileAtomic(file, png);
}
