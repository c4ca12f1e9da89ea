/**
 * The Dataset type: NHWC float32 images in [0, 1], integer labels, class names. Shuffle,
 * split and batching are seeded; batches stream as tensors one at a time.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { check, checkFiniteNumber, DataError } from '../util/errors.js';
import { permutation } from '../util/random.js';

export interface Dataset {
  /** Where it came from (a data spec such as `mnist:test`). */
  readonly name: string;
  /** Images, row-major NHWC, values in [0, 1]. */
  readonly images: Float32Array;
  /** Integer labels in [0, classNames.length). */
  readonly labels: Int32Array;
  /** [height, width, channels] of one image. */
  readonly shape: readonly [number, number, number];
  readonly classNames: readonly string[];
  /** A stable id per example (index in the source), carried through shuffles and splits. */
  readonly ids: Int32Array;
  /** Where each example came from (an image folder's file, relative to the folder), when known. */
  readonly sources?: readonly string[];
}

export function size(ds: Dataset): number {
  return ds.labels.length;
}

export function imageSize(ds: Dataset): number {
  return ds.shape[0] * ds.shape[1] * ds.shape[2];
}

/** Builds a Dataset, checking sizes, label range and pixel range. */
export function makeDataset(name: string, images: Float32Array, labels: Int32Array, shape: readonly [number, number, number], classNames: readonly string[], ids?: Int32Array): Dataset {
  const per = shape[0] * shape[1] * shape[2];
  if (images.length !== labels.length * per) {
    throw new DataError(`Error in dataset ${name}: ${labels.length} labels need ${labels.length * per} pixel values of shape [${shape.join(', ')}], but got ${images.length}.`);
  }
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (!(l >= 0 && l < classNames.length)) {
      throw new DataError(`Error in dataset ${name}: label ${l} at index ${i} is outside [0, ${classNames.length - 1}] (${classNames.length} classes).`);
    }
  }
  for (let i = 0; i < images.length; i++) {
    const v = images[i]!;
    if (!(v >= 0 && v <= 1)) {
      throw new DataError(`Error in dataset ${name}: pixel value ${v} at flat index ${i} is outside [0, 1]; scale images to [0, 1] first.`);
    }
  }
  return { name, images, labels, shape, classNames, ids: ids ?? Int32Array.from({ length: labels.length }, (_, i) => i) };
}

/** The examples at `indices`, in that order. */
export function subset(ds: Dataset, indices: ArrayLike<number>, name = ds.name): Dataset {
  const per = imageSize(ds);
  const images = new Float32Array(indices.length * per);
  const labels = new Int32Array(indices.length);
  const ids = new Int32Array(indices.length);
  const sources: string[] | undefined = ds.sources ? [] : undefined;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    images.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = ds.labels[i]!;
    ids[k] = ds.ids[i]!;
    sources?.push(ds.sources![i]!);
  }
  return { name, images, labels, shape: ds.shape, classNames: ds.classNames, ids, ...(sources ? { sources } : {}) };
}

/** The examples [start, end), ids kept (a shard's block). */
export function slice(ds: Dataset, start: number, end: number): Dataset {
  if (start === 0 && end === size(ds)) return ds;
  return subset(ds, Int32Array.from({ length: end - start }, (_, k) => start + k));
}

/**
 * SHA-256 of the examples exactly as a run uses them: image shape, ids, labels (int32 LE) and
 * pixels (float32 LE), so two runs that agree on it attacked the same inputs.
 */
export function datasetDigest(ds: Dataset): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ shape: ds.shape, examples: size(ds), classes: ds.classNames }));
  const bytes = (a: Int32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  h.update(bytes(ds.ids));
  h.update(bytes(ds.labels));
  h.update(bytes(ds.images));
  return h.digest('hex');
}

/** A seeded permutation of the examples. */
export function shuffle(ds: Dataset, seed: number): Dataset {
  return subset(ds, permutation(size(ds), seed));
}

/** The first `n` examples (all of them when n >= size). */
export function take(ds: Dataset, n: number): Dataset {
  checkFiniteNumber('take', 'n', n, { integer: true, min: 0 });
  if (n >= size(ds)) return ds;
  return subset(ds, Int32Array.from({ length: n }, (_, i) => i));
}

/** Splits off a seeded random fraction: returns [rest, held-out]. */
export function split(ds: Dataset, heldOutFraction: number, seed: number): [Dataset, Dataset] {
  checkFiniteNumber('split', 'heldOutFraction', heldOutFraction, { min: 0, max: 1 });
  const p = permutation(size(ds), seed);
  const nHeld = Math.round(size(ds) * heldOutFraction);
  const held = p.slice(0, nHeld).sort();
  const rest = p.slice(nHeld).sort();
  return [subset(ds, rest, `${ds.name}#train`), subset(ds, held, `${ds.name}#heldout`)];
}

export interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  /** Positions of these examples in the dataset. */
  start: number;
  end: number;
}

/**
 * Streams batches as tensors, in order or in a seeded shuffled order. Each batch's tensors
 * belong to the caller (dispose them); only one batch exists at a time unless kept.
 */
export function* batches(ds: Dataset, batchSize: number, options: { seed?: number; from?: number; transform?: (images: Float32Array, start: number) => Float32Array } = {}): Generator<Batch> {
  checkFiniteNumber('batches', 'batchSize', batchSize, { integer: true, min: 1 });
  const n = size(ds);
  const order = options.seed === undefined ? undefined : permutation(n, options.seed);
  const per = imageSize(ds);
  for (let start = options.from ?? 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    let images: Float32Array;
    let labels: Int32Array;
    if (order) {
      images = new Float32Array((end - start) * per);
      labels = new Int32Array(end - start);
      for (let k = start; k < end; k++) {
        const i = order[k]!;
        images.set(ds.images.subarray(i * per, (i + 1) * per), (k - start) * per);
        labels[k - start] = ds.labels[i]!;
      }
    } else {
      images = ds.images.subarray(start * per, end * per);
      labels = ds.labels.subarray(start, end);
    }
    if (options.transform) images = options.transform(images, start);
    yield { x: tf.tensor4d(images, [end - start, ...ds.shape]), y: tf.tensor1d(labels, 'int32'), start, end };
  }
}

/** Checks that a model's input shape matches the data; the message shows both. */
export function checkShapes(fn: string, modelShape: readonly number[], ds: Dataset): void {
  const same = modelShape.length === 3 && modelShape.every((v, i) => v === ds.shape[i]);
  check(same, fn, () => `the model takes inputs of shape [${modelShape.join(', ')}] but the data ${ds.name} has images of shape [${ds.shape.join(', ')}]; resize the data (--resize fit or --resize crop; the library: resizeDataset) or use a model built for it.`);
}
