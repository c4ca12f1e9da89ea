/**
 * MI-FGSM — Momentum Iterative FGSM (Dong, Liao, Pang, Su, Zhu, Hu, Li 2018, "Boosting
 * Adversarial Attacks with Momentum", arXiv:1710.06081).
 *
 * Threat model: white-box, L∞ (or L2) ball of radius eps, untargeted or targeted.
 * Accumulates g ← μ·g + ∇ℓ/‖∇ℓ‖₁ and steps along the normalized g (sign for L∞), projecting
 * onto the ball each step. Momentum stabilizes the direction and helps transfer.
 *
 * Options (defaults in MIFGSM_DEFAULTS): eps (required), steps 10, relStepSize 1/steps
 * (α = eps/steps, as in the paper) or absStepSize, momentum (μ) 1.0, norm 'linf', loss 'ce',
 * goal untargeted, earlyStop false, seed 0.
 * Shapes: x [N, H, W, C] in the model's bounds; y [N] integer labels.
 *
 * @example
 * const r = await mifgsm(model, x, y, { eps: 16 / 255, momentum: 1.0 });
 */
import * as tf from '@tensorflow/tfjs';
import type { Bounds, Classifier } from '../models/classifier.js';
import { runGradientAttack, type AttackResult, type GradientAttackOptions, type StepRule } from './gradient_descent.js';
import type { Norm } from './lp.js';
import type { Labels } from './targets.js';
import { defined } from '../util/errors.js';

export type MifgsmOptions = Omit<GradientAttackOptions, 'randomStart' | 'restarts'>;

export const MIFGSM_DEFAULTS = Object.freeze({ steps: 10, momentum: 1.0, norm: 'linf' as const, loss: 'ce' as const, earlyStop: false, seed: 0 });

export function mifgsm(model: Classifier, x: tf.Tensor4D, y: Labels, options: MifgsmOptions): Promise<AttackResult> {
  const o = { ...MIFGSM_DEFAULTS, ...defined(options) };
  return runGradientAttack('mifgsm', model, x, y, { relStepSize: 1 / o.steps, ...o, randomStart: false, restarts: 1 }, { rule: (r, bounds) => momentumStep(r.norm, r.eps, r.stepSize, r.momentum, bounds) });
}

/** The momentum rule: g ← μ·g + ∇/‖∇‖₁, then a fixed step along normalize(g). */
export function momentumStep(norm: Norm, eps: number, stepSize: number, mu: number, bounds: Bounds): StepRule {
  const l1 = (g: tf.Tensor4D) => tf.div(g, tf.add(tf.reshape(tf.sum(tf.abs(tf.reshape(g, [g.shape[0], -1])), 1), [g.shape[0], 1, 1, 1]), 1e-12));
  return {
    init: (x) => ({ m: tf.zerosLike(x) }),
    step: ({ x, adv, grad }, s) => {
      const m = tf.add(tf.mul(s.m!, mu), l1(grad)) as tf.Tensor4D;
      return { next: norm.project(tf.add(adv, tf.mul(norm.normalize(m, adv, bounds), stepSize)) as tf.Tensor4D, x, eps, bounds), state: { m } };
    },
  };
}

