/**
 * FMN — Fast Minimum-Norm attack (Pintor, Roli, Brendel, Biggio 2021, "Fast Minimum-norm
 * Adversarial Attacks through Adaptive Norm Constraints", NeurIPS, arXiv:2102.12827), L∞, L2,
 * L1 and L0.
 *
 * Under L0 (how many values change) the radius is a count: it starts at 1 and moves by at least
 * one value per step, by γ where that is more; the projection keeps the largest changes.
 *
 * Threat model: white-box, minimum norm, untargeted or targeted. Each step reads the margin g
 * of the goal (as in Carlini–Wagner) and its gradient at x + δ, then moves the radius ε of a
 * ball around x: while no adversarial point is known, to ‖δ‖ plus the linear estimate of the
 * distance to the boundary, |g|/‖∇g‖_* (the dual norm), grown by γ (on an exactly linear
 * boundary the bare estimate lands on it and never crosses); after one is known, ε grows by γ where
 * x + δ is not adversarial and shrinks by γ (never above the smallest adversarial norm
 * found) where it is. δ then takes a step of length α along ∇g/‖∇g‖₂ and is projected onto
 * the ε-ball intersected with the bounds (lp.ts). Both the step and the estimate leave out the
 * gradient's components that push a pixel already at a bound further out (the paper's code
 * keeps them, so where the bounds bind its estimate falls short and ε stalls below the
 * boundary). α falls from maxStepSize to minStepSize and
 * γ from gamma to 0.001 on cosine schedules. Each sample keeps its smallest adversarial δ.
 *
 * `minimumNorm` is each sample's smallest adversarial distance (Infinity where none was
 * found); `adversarial` that point, projected into the eps-ball when it lies beyond eps.
 *
 * Options (FMN_DEFAULTS): eps (required), norm 'linf' ('l2', 'l1', 'l0'), steps 100, maxStepSize 1,
 * minStepSize maxStepSize/100, gamma 0.05, goal untargeted. Shapes: x [N, H, W, C] in the
 * model's bounds; y [N] integer labels.
 *
 * @example
 * const r = await fmn(model, x, y, { eps: 2, norm: 'l2' });
 * console.log(r.minimumNorm); // per-sample L2 distance to the closest adversarial found
 */
import * as tf from '@tensorflow/tfjs';
import { logitsAsync, type Classifier } from '../models/classifier.js';
import { checkFiniteNumber, defined } from '../util/errors.js';
import { goalMet, validateAttack, type AttackResult, type GradientAttackOptions } from './gradient_descent.js';
import { NORM_NAMES, type NormName } from './lp.js';
import { goalRows, marginGradient, minimumNormResult, pickRows } from './minimum_norm.js';
import type { Labels } from './targets.js';

export interface FmnOptions extends Pick<GradientAttackOptions, 'eps' | 'norm' | 'steps' | 'seed' | 'goal'> {
  /** The gradient step's length at the first step (pixel units, L2). */
  maxStepSize?: number;
  /** Its length at the last step (default maxStepSize / 100). */
  minStepSize?: number;
  /** The radius' relative change at the first step; it falls to 0.001. */
  gamma?: number;
}

export const FMN_DEFAULTS = Object.freeze({ norm: 'linf' as const, steps: 100, maxStepSize: 1, gamma: 0.05, seed: 0 });

const GAMMA_FINAL = 0.001;

/**
 * L0's radius, a count: after an adversarial step at least one value fewer (and never more than
 * the smallest count found), else at least one more, each by the fraction γ where that is more.
 */
function countRadius(eps: tf.Tensor1D, adv: tf.Tensor1D, best: tf.Tensor1D, gamma: number): tf.Tensor1D {
  return tf.tidy(() => tf.maximum(tf.where(adv,
    tf.minimum(tf.minimum(tf.sub(eps, 1), tf.floor(tf.mul(eps, 1 - gamma))), best),
    tf.maximum(tf.add(eps, 1), tf.floor(tf.mul(eps, 1 + gamma)))), 0) as tf.Tensor1D);
}

/** The dual norm of each row of g [N, D]: ‖·‖₁ for L∞, ‖·‖₂ for L2, ‖·‖∞ for L1. */
function dualNorm(norm: NormName, g: tf.Tensor2D): tf.Tensor1D {
  if (norm === 'linf') return tf.sum(tf.abs(g), 1) as tf.Tensor1D;
  if (norm === 'l2') return tf.sqrt(tf.sum(tf.square(g), 1)) as tf.Tensor1D;
  return tf.max(tf.abs(g), 1) as tf.Tensor1D;
}

export async function fmn(model: Classifier, x: tf.Tensor4D, y: Labels, options: FmnOptions): Promise<AttackResult> {
  const fn = 'fmn';
  const o = { ...FMN_DEFAULTS, ...defined(options) };
  const { labels, resolved: r } = validateAttack(fn, model, x, y, { ...o, loss: 'margin', relStepSize: 1 }, NORM_NAMES);
  const maxStep = checkFiniteNumber(fn, 'maxStepSize', o.maxStepSize, { min: 0, minExclusive: true });
  const minStep = checkFiniteNumber(fn, 'minStepSize', o.minStepSize ?? maxStep / 100, { min: 0, max: maxStep });
  const gamma0 = checkFiniteNumber(fn, 'gamma', o.gamma, { min: 0, max: 0.99 });
  const g = goalRows(labels, r);
  const goalT = tf.tensor1d(g.goal, 'int32');
  const n = x.shape[0];
  const [lo, hi] = model.bounds;
  const flat = (t: tf.Tensor) => tf.reshape(t, [n, -1]) as tf.Tensor2D;
  // No perturbation inside the bounds is larger than the one to the farthest corner.
  const worst = tf.tidy(() => r.norm.distance(tf.where(tf.greater(tf.sub(x, lo), tf.sub(hi, x)), tf.fill(x.shape, lo), tf.fill(x.shape, hi)) as tf.Tensor4D, x));
  let delta = tf.zerosLike(x) as tf.Tensor4D;
  let bestDelta = tf.zerosLike(x) as tf.Tensor4D;
  let bestNorm = tf.clone(worst);
  let found = tf.zeros([n], 'bool') as tf.Tensor1D;
  // Under L0 the radius is a count of values, from 1; under Lp it starts unknown.
  let eps = tf.fill([n], r.norm.name === 'l0' ? 1 : Infinity) as tf.Tensor1D;
  try {
    for (let i = 0; i < r.steps; i++) {
      const cos = (1 + Math.cos((Math.PI * i) / r.steps)) / 2;
      const alpha = minStep + (maxStep - minStep) * cos;
      const gamma = GAMMA_FINAL + (gamma0 - GAMMA_FINAL) * cos;
      const at = tf.add(x, delta) as tf.Tensor4D;
      const mg = await marginGradient(model, at, g);
      const next = tf.tidy(() => {
        const adv = goalMet(mg.logits, goalT, g.targeted);
        const size = r.norm.distance(at, x);
        const closer = tf.logicalAnd(adv, tf.lessEqual(size, bestNorm)) as tf.Tensor1D;
        const bestN = tf.where(closer, size, bestNorm) as tf.Tensor1D;
        const bestD = pickRows(closer, delta, bestDelta);
        const foundNext = tf.logicalOr(found, adv) as tf.Tensor1D;
        // Components pushing a pixel already at a bound further out are dropped: clipping
        // would undo them, and they would shrink the step and the distance estimate.
        const blocked = tf.logicalOr(tf.logicalAnd(tf.lessEqual(at, lo), tf.less(mg.grad, 0)), tf.logicalAnd(tf.greaterEqual(at, hi), tf.greater(mg.grad, 0)));
        const grad = flat(tf.where(blocked, tf.zerosLike(mg.grad), mg.grad));
        const radius = tf.minimum(r.norm.name === 'l0' ? countRadius(eps, adv, bestN, gamma)
          : tf.where(adv, tf.minimum(tf.mul(eps, 1 - gamma), bestN),
            tf.where(found, tf.mul(eps, 1 + gamma), tf.mul(tf.add(size, tf.div(tf.abs(mg.margin), tf.maximum(dualNorm(r.norm.name, grad), 1e-12))), 1 + gamma))), worst) as tf.Tensor1D;
        const unit = tf.div(grad, tf.maximum(tf.norm(grad, 2, 1, true), 1e-12));
        const stepped = tf.add(at, tf.mul(tf.reshape(unit, x.shape), alpha)) as tf.Tensor4D;
        const projected = r.norm.project(stepped, x, radius, model.bounds);
        return { delta: tf.sub(projected, x) as tf.Tensor4D, bestDelta: bestD, bestNorm: bestN, found: foundNext, eps: radius };
      });
      tf.dispose([at, mg.logits, mg.grad, mg.margin, delta, bestDelta, bestNorm, found, eps]);
      ({ delta, bestDelta, bestNorm, found, eps } = next);
    }
    // The last iterate has not been scored yet.
    const at = tf.add(x, delta) as tf.Tensor4D;
    const z = await logitsAsync(model, at);
    const point = tf.tidy(() => {
      const closer = tf.logicalAnd(goalMet(z, goalT, g.targeted), tf.lessEqual(r.norm.distance(at, x), bestNorm)) as tf.Tensor1D;
      return tf.add(x, pickRows(closer, delta, bestDelta)) as tf.Tensor4D;
    });
    tf.dispose([at, z]);
    return await minimumNormResult(model, x, point, labels, r);
  } finally {
    tf.dispose([worst, delta, bestDelta, bestNorm, found, eps, goalT]);
  }
}
