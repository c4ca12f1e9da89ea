/**
 * PGD — Projected Gradient Descent (Madry, Makelov, Schmidt, Tsipras, Vladu 2018, "Towards
 * Deep Learning Models Resistant to Adversarial Attacks", arXiv:1706.06083).
 *
 * Threat model: white-box, L∞ or L2 ball of radius eps, untargeted or targeted.
 * From a uniform random point of the ball, `steps` normalized-gradient steps of size α, each
 * projected back onto the ball and the bounds; with restarts, each sample keeps its strongest
 * result (a success first, else the highest loss).
 *
 * Options (defaults in PGD_DEFAULTS): eps (required), steps 40, relStepSize 2.5/steps
 * (α = 2.5·eps/steps, Madry et al.) or absStepSize, randomStart true, restarts 1,
 * norm 'linf', loss 'ce' ('margin', 'dlr'), goal untargeted, earlyStop false, seed 0.
 * Shapes: x [N, H, W, C] in the model's bounds; y [N] integer labels.
 *
 * @example
 * const r = await pgd(model, x, y, { eps: 0.3, steps: 40, restarts: 5, seed: 1 });
 * const robust = 1 - r.success.reduce((a, b) => a + b, 0) / r.success.length;
 */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { gradientAttackExamples, runGradientAttack, type AttackResult, type GradientAttackOptions } from './gradient_descent.js';
import type { Labels } from './targets.js';
import { defined } from '../util/errors.js';

export type PgdOptions = Omit<GradientAttackOptions, 'momentum'>;

export const PGD_DEFAULTS = Object.freeze({ steps: 40, randomStart: true, restarts: 1, norm: 'linf' as const, loss: 'ce' as const, earlyStop: false, seed: 0 });

export function pgd(model: Classifier, x: tf.Tensor4D, y: Labels, options: PgdOptions): Promise<AttackResult> {
  return runGradientAttack('pgd', model, x, y, { ...PGD_DEFAULTS, ...defined(options) });
}

/** PGD's adversarial batch alone, without the re-check (for adversarial training). */
export function pgdExamples(model: Classifier, x: tf.Tensor4D, y: Labels, options: PgdOptions): Promise<tf.Tensor4D> {
  return gradientAttackExamples('pgd', model, x, y, { ...PGD_DEFAULTS, ...defined(options) });
}
