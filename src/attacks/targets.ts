/**
 * Attack goals are values: `{ kind: 'untargeted' }` (change the prediction away from the
 * true label) or `{ kind: 'targeted', labels }` (make the model predict `labels`).
 * Target pickers are plain functions that return labels.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, show } from '../util/errors.js';
import { Rng } from '../util/random.js';

export type Labels = tf.Tensor1D | ArrayLike<number>;
export type Goal = { kind: 'untargeted' } | { kind: 'targeted'; labels: Labels };

export const UNTARGETED: Goal = Object.freeze({ kind: 'untargeted' });

export function targeted(labels: Labels): Goal {
  return { kind: 'targeted', labels };
}

/** Labels as int32, refusing what is not a list of non-negative integers (2.5, NaN, a disposed tensor). */
export function labelsToArray(labels: Labels, fn = 'labels'): Int32Array {
  const isTensor = labels instanceof tf.Tensor;
  check(isTensor ? !labels.isDisposed : labels != null && typeof (labels as ArrayLike<number>).length === 'number', fn,
    () => (isTensor ? 'y is a disposed tensor; keep the labels alive until the call returns.' : `y must be a 1-D tensor or an array of class indices, but got ${show(labels)}.`));
  const raw: ArrayLike<number> = isTensor ? (labels as tf.Tensor).dataSync() : (labels as ArrayLike<number>);
  for (let i = 0; i < raw.length; i++) {
    const l = raw[i];
    check(typeof l === 'number' && Number.isInteger(l) && l >= 0 && l < 2 ** 31, fn, () => `y[${i}] = ${show(l)} is not a class index (an integer >= 0).`);
  }
  return Int32Array.from(raw);
}

/** A uniformly random class different from each true label (seeded). */
export function randomTargets(y: Labels, numClasses: number, seed: number): Int32Array {
  checkFiniteNumber('randomTargets', 'numClasses', numClasses, { integer: true, min: 2 });
  const ys = labelsToArray(y);
  const rng = new Rng(seed);
  return ys.map((label) => {
    const t = rng.int(numClasses - 1);
    return t >= label ? t + 1 : t;
  });
}

/** The class the model finds least likely on the clean input (Kurakin et al. 2016). */
export function leastLikelyTargets(model: Classifier, x: tf.Tensor4D): Int32Array {
  const t = tf.tidy(() => tf.argMin(model.logits(x), 1));
  const out = Int32Array.from(t.dataSync());
  t.dispose();
  return out;
}

/** The same target class for every sample. */
export function fixedTargets(n: number, target: number, numClasses: number): Int32Array {
  check(Number.isInteger(target) && target >= 0 && target < numClasses, 'fixedTargets', () => `target must be an integer class in [0, ${numClasses - 1}], but got ${target}.`);
  return new Int32Array(n).fill(target);
}

/** The classes ranked 2nd, 3rd, ... by the clean logits, skipping the true class: [N, count]. */
export function rankedWrongClasses(model: Classifier, x: tf.Tensor4D, labels: Int32Array, count: number): Int32Array[] {
  const k = model.numClasses;
  const order = tf.tidy(() => tf.topk(model.logits(x), k).indices);
  const idx = order.dataSync();
  order.dispose();
  return Array.from({ length: count }, (_, rank) => Int32Array.from(labels, (label, s) => {
    let seen = 0;
    for (let j = 0; j < k; j++) {
      const c = idx[s * k + j]!;
      if (c === label) continue;
      if (seen++ === rank) return c;
    }
    return label;
  }));
}
