/**
 * Attack objectives: per-sample values [N] that the attack *maximizes*.
 *
 * - `ce`: softmax cross-entropy. Untargeted: CE(z, y). Targeted: -CE(z, t).
 * - `margin`: the Carlini–Wagner margin (Carlini & Wagner 2017, arXiv:1608.04644) on logits.
 *   Untargeted: max_{j≠y} z_j - z_y. Targeted: z_t - max_{j≠t} z_j. Positive means success.
 * - `dlr`: the Difference of Logits Ratio (Croce & Hein 2020, "Reliable evaluation of
 *   adversarial robustness with an ensemble of diverse parameter-free attacks",
 *   arXiv:2003.01690), invariant to shifts and scaling of the logits.
 *   Untargeted: -(z_y - max_{j≠y} z_j) / (z_π1 - z_π3 + 1e-12).
 *   Targeted: -(z_y - z_t) / (z_π1 - (z_π3 + z_π4)/2 + 1e-12), with y the true label
 *   (needs >= 4 classes).
 * z are logits [N, K]; π sorts them in decreasing order.
 */
import * as tf from '@tensorflow/tfjs';
import type { ObjectiveSpec } from '../models/native.js';

export const LOSSES = ['ce', 'margin', 'dlr'] as const;
export type LossName = (typeof LOSSES)[number];

const BIG = 1e9;

/**
 * The `count` largest logits per row, largest first, as differentiable [N] tensors (TopK has
 * no gradient in tfjs; masked maxima do).
 */
function topValues(z: tf.Tensor2D, count: number): tf.Tensor1D[] {
  const out: tf.Tensor1D[] = [];
  let masked: tf.Tensor2D = z;
  for (let i = 0; i < count; i++) {
    out.push(tf.max(masked, 1) as tf.Tensor1D);
    if (i + 1 < count) masked = tf.sub(masked, tf.mul(tf.oneHot(tf.argMax(masked, 1), z.shape[1]).toFloat(), BIG)) as tf.Tensor2D;
  }
  return out;
}

/** max over j ≠ label of z_j. */
function maxOther(z: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Tensor1D {
  return tf.max(tf.sub(z, tf.mul(oneHot, BIG)), 1) as tf.Tensor1D;
}

function pick(z: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.mul(z, oneHot), 1) as tf.Tensor1D;
}

/** z_a − z_b per sample, for class labels a and b [N] (FAB's boundary, APGD-T's few-class margin). */
export function logitGap(z: tf.Tensor2D, a: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.sub(pick(z, tf.oneHot(a, z.shape[1]).toFloat() as tf.Tensor2D), pick(z, tf.oneHot(b, z.shape[1]).toFloat() as tf.Tensor2D)) as tf.Tensor1D);
}

/**
 * The native path's name for `objective(loss, z, labels, targeted, trueLabels)` (models/native.ts
 * computes its gradient in-graph): `labels` as given, the true labels as `other` for targeted DLR.
 */
export function objectiveSpec(loss: LossName, labels: Int32Array, targeted: boolean, trueLabels?: Int32Array): ObjectiveSpec {
  return { kind: targeted ? `${loss}-targeted` : loss, labels, ...(targeted && loss === 'dlr' && trueLabels ? { other: trueLabels } : {}) };
}

/**
 * The objective to maximize. `labels` are the true labels for untargeted attacks and the
 * targets for targeted ones; `trueLabels` (targeted DLR only) are the true labels.
 */
export function objective(loss: LossName, z: tf.Tensor2D, labels: tf.Tensor1D, targeted: boolean, trueLabels?: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const k = z.shape[1];
    const oh = tf.oneHot(labels, k).toFloat() as tf.Tensor2D;
    switch (loss) {
      case 'ce': {
        const ce = tf.neg(tf.sum(tf.mul(oh, tf.logSoftmax(z)), 1)) as tf.Tensor1D;
        return targeted ? tf.neg(ce) : ce;
      }
      case 'margin': {
        const m = tf.sub(maxOther(z, oh), pick(z, oh)) as tf.Tensor1D;
        return targeted ? tf.neg(m) : m;
      }
      case 'dlr': {
        const sorted = topValues(z, Math.min(k, 4));
        const at = (i: number) => sorted[Math.min(i, sorted.length - 1)]!;
        if (!targeted) {
          return tf.div(tf.neg(tf.sub(pick(z, oh), maxOther(z, oh))), tf.add(tf.sub(at(0), at(2)), 1e-12)) as tf.Tensor1D;
        }
        const y = tf.oneHot(trueLabels ?? labels, k).toFloat() as tf.Tensor2D;
        const denom = tf.add(tf.sub(at(0), tf.mul(0.5, tf.add(at(2), at(3)))), 1e-12);
        return tf.div(tf.neg(tf.sub(pick(z, y), pick(z, oh))), denom) as tf.Tensor1D;
      }
    }
  });
}
