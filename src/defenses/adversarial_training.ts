/**
 * Adversarial training: each training batch is replaced by adversarial examples made against
 * the current weights.
 *
 * - `fgsm-rs`: fast FGSM with a uniform random start and step 1.25·eps (Wong, Rice, Kolter 2020,
 *   "Fast is better than free", arXiv:2001.03994); use with the cyclic schedule and early
 *   stopping on a PGD check against catastrophic overfitting (trainClassifier does both).
 * - `pgd`: PGD-AT (Madry et al. 2018, arXiv:1706.06083), `steps` steps of 2.5·eps/steps from a
 *   random start.
 * The attack sees the model in inference mode; examples are seeded per batch.
 */
import * as tf from '@tensorflow/tfjs';
import { pgd } from '../attacks/pgd.js';
import { fromFunction, type Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, show } from '../util/errors.js';

export const ADVERSARIAL_METHODS = ['fgsm-rs', 'pgd'] as const;
export type AdversarialMethod = (typeof ADVERSARIAL_METHODS)[number];

export interface AdversarialTraining {
  method: AdversarialMethod;
  /** L∞ radius in pixel units. */
  eps: number;
  /** PGD steps (pgd only). Default 7. */
  steps?: number;
  /** Epochs over which eps ramps linearly from 0 (default 0: full eps from the start). */
  rampEpochs?: number;
}

export const ADVERSARIAL_DEFAULTS = Object.freeze({ steps: 7, rampEpochs: 0 });

export function validateAdversarial(fn: string, a: AdversarialTraining): Required<AdversarialTraining> {
  check((ADVERSARIAL_METHODS as readonly string[]).includes(a.method), fn, () => `adversarial.method must be one of ${ADVERSARIAL_METHODS.join(', ')}, but got ${show(a.method)}.`);
  const eps = checkFiniteNumber(fn, 'adversarial.eps', a.eps, { min: 0, minExclusive: true });
  const steps = checkFiniteNumber(fn, 'adversarial.steps', a.steps ?? ADVERSARIAL_DEFAULTS.steps, { integer: true, min: 1 });
  const rampEpochs = checkFiniteNumber(fn, 'adversarial.rampEpochs', a.rampEpochs ?? ADVERSARIAL_DEFAULTS.rampEpochs, { min: 0 });
  return { method: a.method, eps, steps, rampEpochs };
}

/** The eps in force at a fractional epoch (linear ramp-up). */
export function rampedEps(a: Required<AdversarialTraining>, epochProgress: number): number {
  return a.rampEpochs > 0 ? a.eps * Math.min(1, epochProgress / a.rampEpochs) : a.eps;
}

/** A classifier view of a model under training (inference mode, current weights). */
export function trainingView(model: tf.LayersModel, inputShape: readonly [number, number, number], numClasses: number): Classifier {
  return fromFunction((x) => model.apply(x, { training: false }) as tf.Tensor2D, { numClasses, inputShape });
}

/** Adversarial examples for one training batch (the caller disposes the result). */
export async function adversarialBatch(view: Classifier, x: tf.Tensor4D, labels: Int32Array, a: Required<AdversarialTraining>, eps: number, seed: number): Promise<tf.Tensor4D> {
  if (eps <= 0) return tf.clone(x);
  const options = a.method === 'fgsm-rs'
    ? { eps, steps: 1, absStepSize: 1.25 * eps, randomStart: true, seed }
    : { eps, steps: a.steps, randomStart: true, seed };
  const r = await pgd(view, x, labels, options);
  return r.adversarial;
}
