/**
 * Data into a model of another size: images resized to [H, W] and their channels converted.
 *
 * - `fit`: the whole image scaled to H x W, aspect ratio not kept (Keras'
 *   `image_dataset_from_directory` default);
 * - `crop`: scaled so that it covers H x W, then centre-cropped (torchvision's Resize + CenterCrop);
 * - `none`: no resizing; a size that differs from the model's is refused.
 *
 * Bilinear with half-pixel centres for arrays (npy, idx); image folders are resized as they are
 * decoded (image_folder.ts, sharp). Greyscale becomes RGB by repeating the channel, RGB becomes
 * greyscale by ITU-R 601 luma (as the folder reader does).
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, show } from '../util/errors.js';
import { imageSize, makeDataset, size, type Dataset } from './dataset.js';

export type ResizeMode = 'fit' | 'crop' | 'none';

export interface ResizeSpec {
  mode: ResizeMode;
  /** [height, width]; default: the model's input size. */
  size?: [number, number];
}

export const RESIZE_HELP = 'fit, crop, none, or H,W with an optional :fit or :crop (e.g. 224,224:crop)';

/** Parses `fit`, `crop`, `none`, `H,W`, `HxW`, `H,W:crop`. */
export function parseResize(value: string, name = '--resize'): ResizeSpec {
  const v = String(value).trim().toLowerCase();
  if (v === 'fit' || v === 'crop' || v === 'none') return { mode: v };
  const m = /^(\d{1,5})\s*[,x]\s*(\d{1,5})(?::(fit|crop))?$/.exec(v);
  const h = m ? Number(m[1]) : NaN;
  const w = m ? Number(m[2]) : NaN;
  if (!m || !(h >= 1 && w >= 1 && h <= 16384 && w <= 16384)) {
    throw new InvalidArgumentError(`Error in ${name}: ${show(value)} is not a resize; use ${RESIZE_HELP}, with sizes from 1 to 16384.`);
  }
  return { mode: (m[3] as 'fit' | 'crop' | undefined) ?? 'fit', size: [h, w] };
}

/** The centre box [y1, x1, y2, x2] (normalized) of an h x w image with the aspect ratio of H x W. */
function centreBox(h: number, w: number, H: number, W: number): [number, number, number, number] {
  const scale = Math.max(H / h, W / w);
  const ch = Math.min(1, H / scale / h);
  const cw = Math.min(1, W / scale / w);
  return [(1 - ch) / 2, (1 - cw) / 2, (1 + ch) / 2, (1 + cw) / 2];
}

/**
 * The data set with images of [size[0], size[1], channels] (the same set when they already are),
 * and one sentence saying what was done ('' when nothing was).
 */
export function resizeDataset(ds: Dataset, target: readonly [number, number, number], mode: 'fit' | 'crop'): { ds: Dataset; note: string } {
  const [h, w, c] = ds.shape;
  const [H, W, C] = target;
  if (h === H && w === W && c === C) return { ds, note: '' };
  if ((c !== 1 && c !== 3) || (C !== 1 && C !== 3)) {
    throw new InvalidArgumentError(`Error in --resize: the data ${ds.name} has ${c} channels and the model takes ${C}; advkit converts between 1 (greyscale) and 3 (RGB) channels only.`);
  }
  const n = size(ds);
  const out = new Float32Array(n * H * W * C);
  const chunk = Math.max(1, Math.floor((1 << 24) / Math.max(imageSize(ds), H * W * C)));
  for (let s = 0; s < n; s += chunk) {
    const e = Math.min(n, s + chunk);
    const part = tf.tidy(() => {
      let x = tf.tensor4d(ds.images.subarray(s * imageSize(ds), e * imageSize(ds)), [e - s, h, w, c]) as tf.Tensor4D;
      if (h !== H || w !== W) {
        x = mode === 'crop'
          ? tf.image.cropAndResize(x, tf.tensor2d(Array.from({ length: e - s }, () => centreBox(h, w, H, W))), tf.range(0, e - s, 1, 'int32') as tf.Tensor1D, [H, W], 'bilinear')
          : tf.image.resizeBilinear(x, [H, W], false, true);
      }
      if (c === 1 && C === 3) x = tf.tile(x, [1, 1, 1, 3]);
      if (c === 3 && C === 1) x = tf.sum(tf.mul(x, tf.tensor1d([0.299, 0.587, 0.114])), 3, true) as tf.Tensor4D;
      return tf.clipByValue(x, 0, 1);
    });
    out.set(part.dataSync(), s * H * W * C);
    part.dispose();
  }
  const what = [
    h !== H || w !== W ? `resized from ${h}x${w} to ${H}x${W} (${mode === 'crop' ? 'scaled to cover, centre-cropped' : 'scaled to fit, aspect ratio not kept'})` : '',
    c !== C ? `converted from ${c === 1 ? 'greyscale' : 'RGB'} to ${C === 1 ? 'greyscale' : 'RGB'}` : '',
  ].filter(Boolean).join(' and ');
  return { ds: { ...makeDataset(ds.name, out, ds.labels, [H, W, C], ds.classNames, ds.ids), ...(ds.sources ? { sources: ds.sources } : {}) }, note: `${n} images of ${ds.name} ${what}` };
}
