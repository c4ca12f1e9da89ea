/**
 * Image folders: `dir/<class>/*.png|jpg|jpeg|webp|gif|tif`, one sub-folder per class, labelled
 * by the model's class names when known, else by number when every folder is a number, else by
 * position in name order (folderLabels). Read with sharp as grayscale or RGB, optionally
 * resized (default: RGB if any image has colour, else greyscale). Any other non-hidden file is an
 * error naming the file.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { DataError } from '../util/errors.js';
import { readRegularFile } from '../util/fs.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff']);
/** The formats sharp may decode here (an SVG or a PDF named .png is refused: it renders at any size). */
const IMAGE_FORMATS = new Set(['png', 'jpeg', 'webp', 'gif', 'tiff']);
/** An image file larger than this is refused before reading. */
export const MAX_IMAGE_FILE_BYTES = 256 * 1024 ** 2;
/** An image with more pixels than this (a 8000x8000 photo) is refused from its header, before decoding. */
export const MAX_IMAGE_PIXELS = 64_000_000;
/** The decoded images of one folder, in bytes, at most (the data set is four times this as float32). */
export const MAX_FOLDER_DECODED_BYTES = 1024 ** 3;

export interface ImageFolderOptions {
  /** 1 (greyscale) or 3 (RGB); default: 3 if any image has colour, else 1. */
  channels?: 1 | 3;
  /** [height, width] to resize to; default: the size of the first image (all must match). */
  resize?: [number, number];
  /**
   * How an image of another size is resized (resize.ts): 'fit' (default: scaled to the size,
   * aspect ratio not kept) or 'crop' (scaled to cover it, centre-cropped). Images already of
   * the size are not touched.
   */
  fit?: 'fit' | 'crop';
  /** The model's class names: each folder is labelled by its name's position in them. */
  classNames?: readonly string[];
}

/**
 * The label of each class folder: its position in the model's class names when given (a folder
 * the model does not know is refused; a numeric name may also give the index), else its number
 * when every folder is named by a number (`3/`, `9/`, `10/` are classes 3, 9 and 10, not 0, 1, 2),
 * else its position in name order.
 */
function folderLabels(dir: string, folders: string[], modelClasses?: readonly string[]): { labelOf: Map<string, number>; names: string[] } {
  const numeric = (s: string) => /^(0|[1-9]\d{0,5})$/.test(s);
  if (modelClasses && modelClasses.length > 0) {
    const labelOf = new Map<string, number>();
    for (const f of folders) {
      const byName = modelClasses.indexOf(f);
      const k = byName >= 0 ? byName : numeric(f) && Number(f) < modelClasses.length ? Number(f) : -1;
      if (k < 0) throw new DataError(`Error reading image folder ${dir}: class folder ${JSON.stringify(f)} is not one of the model's classes (${modelClasses.slice(0, 10).map((c) => JSON.stringify(c)).join(', ')}${modelClasses.length > 10 ? ', …' : ''}); rename the folder or use the model it belongs to.`);
      labelOf.set(f, k);
    }
    return { labelOf, names: [...modelClasses] };
  }
  if (folders.every(numeric)) {
    const max = Math.max(...folders.map(Number));
    return { labelOf: new Map(folders.map((f) => [f, Number(f)])), names: Array.from({ length: max + 1 }, (_, i) => String(i)) };
  }
  return { labelOf: new Map(folders.map((f, k) => [f, k])), names: folders };
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(`Error reading image folder ${dir}: ${code === 'ENOENT' ? 'no such directory' : (err as Error).message}.`);
  }
}

export async function readImageFolder(dir: string, options: ImageFolderOptions = {}): Promise<{ images: Float32Array; labels: Int32Array; shape: [number, number, number]; classNames: string[]; files: string[]; resized: number }> {
  const classNames: string[] = [];
  for (const name of await listDir(dir)) {
    const full = path.join(dir, name);
    if ((await fsp.stat(full)).isDirectory()) classNames.push(name);
    else throw new DataError(`Error reading image folder ${dir}: ${full} is a file at the top level; put images in one sub-folder per class (${dir}/<class>/*.png).`);
  }
  if (classNames.length === 0) throw new DataError(`Error reading image folder ${dir}: it has no class sub-folders; expected ${dir}/<class>/*.png.`);
  const { labelOf, names } = folderLabels(dir, classNames, options.classNames);
  const files: string[] = [];
  const labels: number[] = [];
  for (const cls of classNames) {
    const k = labelOf.get(cls)!;
    for (const name of await listDir(path.join(dir, cls))) {
      const full = path.join(dir, cls, name);
      if (!IMAGE_EXT.has(path.extname(name).toLowerCase())) {
        throw new DataError(`Error reading image folder ${dir}: ${full} is not an image (expected .png, .jpg, .jpeg, .webp, .gif or .tif); remove it or move it out of the folder.`);
      }
      files.push(full);
      labels.push(k);
    }
  }
  if (files.length === 0) throw new DataError(`Error reading image folder ${dir}: the class folders hold no images.`);
  const decoded: Array<{ data: Buffer; width: number; height: number; channels: number }> = [];
  let resized = 0;
  let decodedBytes = 0;
  for (const file of files) {
    // A regular file of bounded size (a FIFO would hang the read), then its header: the format
    // and the pixel count are checked before a pixel is decoded.
    const bytes = await readRegularFile(file, `Error reading image folder ${dir}: ${file}`, MAX_IMAGE_FILE_BYTES);
    let meta: sharp.Metadata;
    try {
      meta = await sharp(bytes).metadata();
    } catch (err) {
      throw new DataError(`Error reading image folder ${dir}: ${file} could not be decoded as an image (${(err as Error).message.split('\n')[0]}).`);
    }
    if (!IMAGE_FORMATS.has(String(meta.format))) throw new DataError(`Error reading image folder ${dir}: ${file} is ${meta.format ?? 'of an unknown format'}, not a PNG, JPEG, WebP, GIF or TIFF image; remove it.`);
    const [w0, h0] = [meta.width ?? 0, meta.height ?? 0];
    if (!(w0 > 0 && h0 > 0) || w0 * h0 > MAX_IMAGE_PIXELS) throw new DataError(`Error reading image folder ${dir}: ${file} is ${w0}x${h0} pixels, more than the ${MAX_IMAGE_PIXELS} allowed per image (or none); downscale it first.`);
    const [th, tw] = options.resize ?? [h0, w0];
    decodedBytes += th * tw * 3;
    if (decodedBytes > MAX_FOLDER_DECODED_BYTES) throw new DataError(`Error reading image folder ${dir}: its images decode to more than ${MAX_FOLDER_DECODED_BYTES / 1024 ** 3} GiB (at ${file}); resize them (--resize H,W) or split the folder.`);
    try {
      let img = sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS }).removeAlpha();
      if (options.resize && (h0 !== th || w0 !== tw)) {
        resized++;
        img = img.resize(tw, th, { fit: options.fit === 'crop' ? 'cover' : 'fill', position: 'centre' });
      }
      const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
      decoded.push({ data, width: info.width, height: info.height, channels: info.channels });
    } catch (err) {
      throw new DataError(`Error reading image folder ${dir}: ${file} could not be decoded as an image (${(err as Error).message.split('\n')[0]}).`);
    }
  }
  const first = decoded[0]!;
  // sharp decodes greyscale PNGs to three equal channels: only real colour makes an RGB set.
  const isColour = (d: { data: Buffer; channels: number }) => {
    if (d.channels < 3) return false;
    for (let i = 0; i + 2 < d.data.length; i += d.channels) if (d.data[i] !== d.data[i + 1] || d.data[i + 1] !== d.data[i + 2]) return true;
    return false;
  };
  const channels = options.channels ?? (decoded.some(isColour) ? 3 : 1);
  const [h, w] = [first.height, first.width];
  const per = h * w * channels;
  const images = new Float32Array(files.length * per);
  decoded.forEach((d, i) => {
    if (d.height !== h || d.width !== w) {
      throw new DataError(`Error reading image folder ${dir}: ${files[i]} is ${d.width}x${d.height} but ${files[0]} is ${w}x${h}; resize them to one size (--resize ${h},${w}, or --resize fit to the model's input).`);
    }
    for (let p = 0; p < h * w; p++) {
      if (channels === 1) {
        const v = d.channels >= 3 ? 0.299 * d.data[p * d.channels]! + 0.587 * d.data[p * d.channels + 1]! + 0.114 * d.data[p * d.channels + 2]! : d.data[p * d.channels]!;
        images[i * per + p] = Math.min(255, v) / 255;
      } else {
        for (let c = 0; c < 3; c++) images[i * per + p * 3 + c] = d.data[p * d.channels + (d.channels >= 3 ? c : 0)]! / 255;
      }
    }
  });
  return { images, labels: Int32Array.from(labels), shape: [h, w, channels], classNames: names, files, resized };
}
