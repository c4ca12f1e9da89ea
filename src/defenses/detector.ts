/**
 * Feature squeezing (Xu, Evans, Qi 2018, "Feature Squeezing: Detecting Adversarial Examples in
 * Deep Neural Networks", arXiv:1704.01155): an input is flagged when the model's softmax on it
 * and on a squeezed copy differ by more than a threshold in L1 (the maximum over squeezers).
 * The threshold is calibrated on clean data to a chosen false-positive rate.
 */
import * as tf from '@tensorflow/tfjs';
import { batches, size, type Dataset } from '../data/dataset.js';
import type { Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber } from '../util/errors.js';
import { bitDepth, medianSmoothing, type Preprocessor } from './preprocess.js';

/** The squeezers Xu et al. use for MNIST: 1-bit depth and median smoothing (3x3 here: windows are odd). */
export function defaultSqueezers(): Preprocessor[] {
  return [bitDepth(1), medianSmoothing(3)];
}

/** Per-example score: max over squeezers of ‖softmax(f(x)) − softmax(f(s(x)))‖₁. */
export async function squeezeScores(model: Classifier, data: Dataset, squeezers: Preprocessor[] = defaultSqueezers(), batchSize = 256): Promise<Float32Array> {
  check(squeezers.length > 0, 'squeezeScores', () => 'squeezers must not be empty.');
  const out = new Float32Array(size(data));
  for (const b of batches(data, batchSize)) {
    const s = tf.tidy(() => {
      const p = tf.softmax(model.logits(b.x));
      const d = squeezers.map((q) => tf.sum(tf.abs(tf.sub(p, tf.softmax(model.logits(q.apply(b.x))))), 1));
      return d.reduce((a, v) => tf.maximum(a, v));
    });
    out.set(await s.data(), b.start);
    tf.dispose([s, b.x, b.y]);
  }
  return out;
}

/** The threshold that flags at most a fraction `fpr` of these clean scores. */
export function calibrateThreshold(cleanScores: ArrayLike<number>, fpr: number): number {
  checkFiniteNumber('calibrateThreshold', 'fpr', fpr, { min: 0, max: 0.999999 });
  check(cleanScores.length > 0, 'calibrateThreshold', () => 'needs at least one clean score.');
  const sorted = Float64Array.from(cleanScores).sort();
  const allowed = Math.floor(fpr * sorted.length);
  // Flag scores strictly above the threshold: at most `allowed` clean scores may exceed it.
  return allowed === 0 ? sorted[sorted.length - 1]! : sorted[sorted.length - 1 - allowed]!;
}

export interface DetectionReport {
  squeezers: string[];
  targetFpr: number;
  threshold: number;
  /** False-positive rate measured on the calibration data. */
  cleanFpr: number;
  cleanExamples: number;
  adversarialExamples: number;
  /** Fraction of adversarial examples flagged. */
  detectionRate: number;
}

export async function featureSqueezing(model: Classifier, clean: Dataset, adversarial: Dataset, options: { fpr?: number; squeezers?: Preprocessor[]; batchSize?: number } = {}): Promise<DetectionReport> {
  const fpr = options.fpr ?? 0.05;
  const squeezers = options.squeezers ?? defaultSqueezers();
  const cleanScores = await squeezeScores(model, clean, squeezers, options.batchSize);
  const threshold = calibrateThreshold(cleanScores, fpr);
  const advScores = await squeezeScores(model, adversarial, squeezers, options.batchSize);
  const flagged = (s: Float32Array) => s.filter((v) => v > threshold).length;
  return {
    squeezers: squeezers.map((s) => s.name),
    targetFpr: fpr,
    threshold,
    cleanFpr: flagged(cleanScores) / cleanScores.length,
    cleanExamples: cleanScores.length,
    adversarialExamples: advScores.length,
    detectionRate: advScores.length ? flagged(advScores) / advScores.length : 0,
  };
}
