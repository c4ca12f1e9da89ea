/**
 * Adversarial training: each training batch is replaced by adversarial examples made against
 * the current weights.
 *
 * - `fgsm-rs`: fast FGSM with a uniform random start and step 1.25·eps (Wong, Rice, Kolter 2020,
 *   "Fast is better than free", arXiv:2001.03994); use with the cyclic schedule and early
 *   stopping on a PGD check against catastrophic overfitting (trainClassifier does both).
 * - `pgd`: PGD-AT (Madry et al. 2018, arXiv:1706.06083), `steps` steps of 2.5·eps/steps from a
 *   random start.
 * - `trades`: TRADES (Zhang et al. 2019, "Theoretically Principled Trade-off between Robustness
 *   and Accuracy", arXiv:1901.08573): the inner attack maximizes KL(p(x) ‖ p(x')) from
 *   x + 0.001·N(0, 1); the loss is CE(f(x), y) + beta·KL(p(x) ‖ p(x_adv)).
 * The attack sees the model in inference mode; examples are seeded per batch.
 */
import * as tf from '@tensorflow/tfjs';
import { pgdExamples } from '../attacks/pgd.js';
import { descend, fixedStep } from '../attacks/gradient_descent.js';
import { linf } from '../attacks/lp.js';
import { fromFunction, type Classifier } from '../models/classifier.js';
import { forward } from '../models/compiled.js';
import { check, checkFiniteNumber, show } from '../util/errors.js';

export const ADVERSARIAL_METHODS = ['fgsm-rs', 'pgd', 'trades'] as const;
export type AdversarialMethod = (typeof ADVERSARIAL_METHODS)[number];

export interface AdversarialTraining {
  method: AdversarialMethod;
  /** L∞ radius in pixel units. */
  eps: number;
  /** Inner attack steps (pgd, trades). Default 7. */
  steps?: number;
  /** Weight of the KL term (trades). Default 6. */
  beta?: number;
  /** Epochs over which eps ramps linearly from 0 (default 0: full eps from the start). */
  rampEpochs?: number;
}

export const ADVERSARIAL_DEFAULTS = Object.freeze({ steps: 7, rampEpochs: 0, beta: 6 });

export function validateAdversarial(fn: string, a: AdversarialTraining): Required<AdversarialTraining> {
  check((ADVERSARIAL_METHODS as readonly string[]).includes(a.method), fn, () => `adversarial.method must be one of ${ADVERSARIAL_METHODS.join(', ')}, but got ${show(a.method)}.`);
  const eps = checkFiniteNumber(fn, 'adversarial.eps', a.eps, { min: 0, minExclusive: true });
  const steps = checkFiniteNumber(fn, 'adversarial.steps', a.steps ?? ADVERSARIAL_DEFAULTS.steps, { integer: true, min: 1 });
  const rampEpochs = checkFiniteNumber(fn, 'adversarial.rampEpochs', a.rampEpochs ?? ADVERSARIAL_DEFAULTS.rampEpochs, { min: 0 });
  const beta = checkFiniteNumber(fn, 'adversarial.beta', a.beta ?? ADVERSARIAL_DEFAULTS.beta, { min: 0 });
  return { method: a.method, eps, steps, rampEpochs, beta };
}

/** The eps in force at a fractional epoch (linear ramp-up). */
export function rampedEps(a: Required<AdversarialTraining>, epochProgress: number): number {
  return a.rampEpochs > 0 ? a.eps * Math.min(1, epochProgress / a.rampEpochs) : a.eps;
}

/** A classifier view of a model under training (inference mode, current weights). */
export function trainingView(model: tf.LayersModel, inputShape: readonly [number, number, number], numClasses: number): Classifier {
  return fromFunction((x) => forward(model, x, false) as tf.Tensor2D, { numClasses, inputShape });
}

/** Adversarial examples for one training batch (the caller disposes the result). */
export async function adversarialBatch(view: Classifier, x: tf.Tensor4D, labels: Int32Array, a: Required<AdversarialTraining>, eps: number, seed: number): Promise<tf.Tensor4D> {
  if (eps <= 0) return tf.clone(x);
  if (a.method === 'trades') return tradesAttack(view, x, eps, a.steps, seed);
  const options = a.method === 'fgsm-rs'
    ? { eps, steps: 1, absStepSize: 1.25 * eps, randomStart: true, seed }
    : { eps, steps: a.steps, randomStart: true, seed };
  return pgdExamples(view, x, labels, options);
}

/** KL(p ‖ q) per sample for probability rows p and logits zq. */
export function klDivergence(p: tf.Tensor2D, zq: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.mul(p, tf.sub(tf.log(tf.add(p, 1e-12)), tf.logSoftmax(zq))), 1) as tf.Tensor1D);
}

/**
 * TRADES' inner maximization of KL(p(x) ‖ p(x')) over the L∞ ball, sign steps of 2.5·eps/steps
 * from x + 0.001·N(0, 1): the attack loop with the KL objective as its hook.
 */
export async function tradesAttack(view: Classifier, x: tf.Tensor4D, eps: number, steps: number, seed: number): Promise<tf.Tensor4D> {
  const [lo, hi] = view.bounds;
  const pClean = tf.tidy(() => tf.softmax(view.logits(x)) as tf.Tensor2D);
  const out = await descend(view, x, {
    objective: (z) => klDivergence(pClean, z),
    spec: { kind: 'kl', reference: pClean },
    met: (z) => tf.zeros([z.shape[0]], 'bool') as tf.Tensor1D,
    rule: fixedStep(linf, eps, (2.5 * eps) / steps, view.bounds),
    start: () => tf.tidy(() => tf.clipByValue(tf.add(x, tf.randomNormal(x.shape, 0, 0.001, 'float32', (seed % 2147483646) + 1)), lo, hi) as tf.Tensor4D),
    steps,
    keep: 'last',
    norm: linf,
  }, false);
  tf.dispose([pClean, out.success, out.score]);
  return out.adv;
}
