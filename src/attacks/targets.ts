/**
 * Attack goals are values: `{ kind: 'untargeted' }` (change the prediction away from the
 * true label) or `{ kind: 'targeted', labels }` (make the model predict `labels`).
 * Target pickers are plain functions that return labels.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber } from '../util/errors.js';
import { Rng } from '../util/random.js';

export type Labels = tf.Tensor1D | ArrayLike<number>;
export type Goal = { kind: 'untargeted' } | { kind: 'targeted'; labels: Labels };

export const UNTARGETED: Goal = Object.freeze({ kind: 'untargeted' });

export function targeted(labels: Labels): Goal {
  return { kind: 'targeted', labels };
}

export function labelsToArray(labels: Labels): Int32Array {
  if (labels instanceof tf.Tensor) return Int32Array.from(labels.dataSync());
  return Int32Array.from(labels as ArrayLike<number>);
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
