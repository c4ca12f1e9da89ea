/**
 * FGSM — Fast Gradient Sign Method (Goodfellow, Shlens, Szegedy 2015, "Explaining and
 * Harnessing Adversarial Examples", arXiv:1412.6572), and FGM, its L2 form.
 *
 * Threat model: white-box, L∞ (FGSM) or L2 (FGM) ball of radius eps, untargeted or targeted.
 * One full step: x' = clip(x + eps · sign(∇ℓ)) for L∞, x' = clip(x + eps · ∇ℓ/‖∇ℓ‖₂) for L2.
 * It is the gradient-descent loop with steps = 1 and step size eps.
 *
 * Options (defaults in FGSM_DEFAULTS): eps (required), norm 'linf', loss 'ce', goal
 * untargeted, randomStart false, seed 0.
 * Shapes: x [N, H, W, C] in the model's bounds; y [N] integer labels.
 *
 * @example
 * const r = await fgsm(model, x, y, { eps: 0.1 });
 * console.log(r.success); r.adversarial.dispose();
 */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { runGradientAttack, type AttackResult, type GradientAttackOptions } from './gradient_descent.js';
import type { Labels } from './targets.js';
import { defined } from '../util/errors.js';

export type FgsmOptions = Omit<GradientAttackOptions, 'steps' | 'relStepSize' | 'absStepSize' | 'restarts' | 'momentum' | 'earlyStop'>;

export const FGSM_DEFAULTS = Object.freeze({ norm: 'linf' as const, loss: 'ce' as const, randomStart: false, seed: 0 });

export function fgsm(model: Classifier, x: tf.Tensor4D, y: Labels, options: FgsmOptions): Promise<AttackResult> {
  const o = { ...FGSM_DEFAULTS, ...defined(options) };
  return runGradientAttack('fgsm', model, x, y, { ...o, steps: 1, absStepSize: o.eps });
}
