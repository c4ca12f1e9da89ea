/**
 * BIM — Basic Iterative Method (Kurakin, Goodfellow, Bengio 2016, "Adversarial examples in
 * the physical world", arXiv:1607.02533), a.k.a. I-FGSM.
 *
 * Threat model: white-box, L∞ (or L2) ball of radius eps, untargeted or targeted.
 * Iterates FGSM steps of size α from x (no random start), projecting onto the ball each step.
 *
 * Options (defaults in BIM_DEFAULTS): eps (required), steps 10, relStepSize 0.2 (α = 0.2·eps,
 * as in Foolbox) or absStepSize, norm 'linf', loss 'ce', goal untargeted, earlyStop false.
 * Shapes: x [N, H, W, C] in the model's bounds; y [N] integer labels.
 *
 * @example
 * const r = await bim(model, x, y, { eps: 0.3, steps: 20 });
 */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { runGradientAttack, type AttackResult, type GradientAttackOptions } from './gradient_descent.js';
import type { Labels } from './targets.js';
import { defined } from '../util/errors.js';

export type BimOptions = Omit<GradientAttackOptions, 'randomStart' | 'restarts' | 'momentum'>;

export const BIM_DEFAULTS = Object.freeze({ steps: 10, relStepSize: 0.2, norm: 'linf' as const, loss: 'ce' as const, earlyStop: false, seed: 0 });

export function bim(model: Classifier, x: tf.Tensor4D, y: Labels, options: BimOptions): Promise<AttackResult> {
  return runGradientAttack('bim', model, x, y, { ...BIM_DEFAULTS, ...defined(options), randomStart: false, restarts: 1 });
}
