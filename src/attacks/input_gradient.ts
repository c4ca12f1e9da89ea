/**
 * The gradient of an attack objective with respect to the input images: the one primitive every
 * gradient attack is built on, public for users writing their own. On the onnxruntime backend a
 * compiled classifier computes it natively in one run (models/native.ts); elsewhere, and for any
 * classifier without a native model, tfjs differentiates `logits`.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { check, show } from '../util/errors.js';
import { LOSSES, objective, objectiveSpec, type LossName } from './losses.js';
import { labelsToArray, type Labels } from './targets.js';

export interface InputGradientOptions {
  /** Objective (losses.ts); default 'ce'. */
  loss?: LossName;
  /** When true, `labels` are targets and the objective is the targeted one (default false). */
  targeted?: boolean;
  /** Targeted DLR: the true labels. */
  trueLabels?: Labels;
}

/**
 * ∂(Σ objective)/∂x for images x [N, H, W, C] and labels [N], with the logits and the objective
 * per sample at x. The caller disposes the three tensors.
 */
export async function inputGradient(model: Classifier, x: tf.Tensor4D, labels: Labels, options: InputGradientOptions = {}): Promise<{ gradient: tf.Tensor4D; logits: tf.Tensor2D; loss: tf.Tensor1D }> {
  const fn = 'inputGradient';
  const loss = options.loss ?? 'ce';
  check((LOSSES as readonly string[]).includes(loss), fn, () => `loss must be one of ${LOSSES.join(', ')}, but got ${show(loss)}.`);
  check(x instanceof tf.Tensor && x.rank === 4, fn, () => `x must be a 4-D tensor [N, H, W, C], but got ${x instanceof tf.Tensor ? `rank ${x.rank}` : show(x)}.`);
  const y = labelsToArray(labels, 'labels');
  check(y.length === x.shape[0], fn, () => `labels has ${y.length} entries for ${x.shape[0]} images.`);
  check(y.every((c) => c >= 0 && c < model.numClasses), fn, () => `labels must be classes 0..${model.numClasses - 1}.`);
  const targeted = options.targeted ?? false;
  const trueLabels = options.trueLabels === undefined ? undefined : labelsToArray(options.trueLabels, 'trueLabels');
  check(!(targeted && loss === 'dlr') || (trueLabels !== undefined && trueLabels.length === y.length), fn, () => 'targeted dlr needs trueLabels, one per image.');
  const spec = objectiveSpec(loss, y, targeted, trueLabels);
  const yT = tf.tensor1d(y, 'int32');
  const trueT = trueLabels ? tf.tensor1d(trueLabels, 'int32') : undefined;
  try {
    const nat = await model.native?.gradient(x, spec);
    if (nat) return { gradient: nat.grad, logits: nat.logits, loss: tf.tidy(() => objective(loss, nat.logits, yT, targeted, trueT)) };
    let z: tf.Tensor2D | undefined;
    let l: tf.Tensor1D | undefined;
    const gradient = tf.grad((a: tf.Tensor) => {
      const logits = model.logits(a as tf.Tensor4D);
      z = tf.keep(logits);
      l = tf.keep(objective(loss, logits, yT, targeted, trueT));
      return tf.sum(l);
    })(x) as tf.Tensor4D;
    return { gradient, logits: z!, loss: l! };
  } finally {
    tf.dispose([yT, ...(trueT ? [trueT] : [])]);
  }
}
