/**
 * EAD — Elastic-net Attacks to DNNs (Chen, Sharma, Zhang, Yi, Hsieh 2018, "EAD: Elastic-Net
 * Attacks to Deep Neural Networks via Adversarial Examples", arXiv:1709.04114), L1.
 *
 * Threat model: white-box, minimum norm (L1), untargeted or targeted. It minimizes
 * c·max(κ − g(x'), 0) + ‖x' − x‖₂² + β‖x' − x‖₁ inside the bounds, g the margin of the goal as
 * in Carlini–Wagner, by FISTA: a gradient step on the smooth part at the slack point y with a
 * learning rate decaying as lr·(1 − k/steps)^½, then the projected shrinkage-thresholding
 * S_β (coordinates within β of x return to x, the others move β towards it, clipped to the
 * bounds), then y = x_{k+1} + k/(k+3)·(x_{k+1} − x_k), clipped. The constant c is searched per
 * sample as in Carlini–Wagner. Each sample keeps, over all constants, the iterate meeting the
 * goal (with margin κ) that is best by the decision rule: 'en', the elastic-net distance
 * β‖δ‖₁ + ‖δ‖₂², or 'l1'.
 *
 * The gradient of the distance term stays on once the margin is met; IBM ART's ElasticNet
 * zeroes the whole gradient there, so its iterate stops shrinking towards x.
 *
 * `minimumNorm` is the kept point's L1 distance (Infinity where none met the goal);
 * `adversarial` that point, projected into the eps-ball when it lies beyond eps.
 *
 * Options (EAD_DEFAULTS): eps (required), norm 'l1' (the only one), steps 100 per constant,
 * binarySteps 9, initialConst 1e-3, beta 1e-3, learningRate 0.01, confidence 0, decisionRule
 * 'en', goal untargeted. Shapes: x [N, H, W, C] in the model's bounds; y [N] integer labels.
 *
 * @example
 * const r = await ead(model, x, y, { eps: 10 });
 * console.log(r.minimumNorm); // per-sample L1 distance to the adversarial kept
 */
import * as tf from '@tensorflow/tfjs';
import { logitsAsync, type Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, defined, show } from '../util/errors.js';
import { goalMet, validateAttack, type AttackResult, type GradientAttackOptions } from './gradient_descent.js';
import { objective } from './losses.js';
import { ConstantSearch, goalRows, marginGradient, minimumNormResult, pickRows } from './minimum_norm.js';
import type { Labels } from './targets.js';

export const EAD_RULES = ['en', 'l1'] as const;

export interface EadOptions extends Pick<GradientAttackOptions, 'eps' | 'norm' | 'steps' | 'seed' | 'goal'> {
  /** Runs of the optimization, each with the constants the binary search moves to. */
  binarySteps?: number;
  /** The constant c of the first run. */
  initialConst?: number;
  /** β: the weight of the L1 term, and the shrinkage threshold. */
  beta?: number;
  /** The initial FISTA step size. */
  learningRate?: number;
  /** κ: the margin the goal must be met by. */
  confidence?: number;
  /** Which successful iterate is kept: the smallest elastic-net ('en') or L1 ('l1') distance. */
  decisionRule?: (typeof EAD_RULES)[number];
}

export const EAD_DEFAULTS = Object.freeze({ norm: 'l1' as const, steps: 100, binarySteps: 9, initialConst: 1e-3, beta: 1e-3, learningRate: 0.01, confidence: 0, decisionRule: 'en' as const, seed: 0 });

export async function ead(model: Classifier, x: tf.Tensor4D, y: Labels, options: EadOptions): Promise<AttackResult> {
  const fn = 'ead';
  const o = { ...EAD_DEFAULTS, ...defined(options) };
  check(o.norm === 'l1', fn, () => `EAD is the L1 attack, but got norm ${show(o.norm)}; use cw for L2, or fmn or deepfool for L∞.`);
  const { labels, resolved: r } = validateAttack(fn, model, x, y, { ...o, loss: 'margin', relStepSize: 1 });
  const binarySteps = checkFiniteNumber(fn, 'binarySteps', o.binarySteps, { integer: true, min: 1 });
  const initialConst = checkFiniteNumber(fn, 'initialConst', o.initialConst, { min: 0, minExclusive: true });
  const beta = checkFiniteNumber(fn, 'beta', o.beta, { min: 0 });
  const lr = checkFiniteNumber(fn, 'learningRate', o.learningRate, { min: 0, minExclusive: true });
  const kappa = checkFiniteNumber(fn, 'confidence', o.confidence, { min: 0 });
  check((EAD_RULES as readonly string[]).includes(o.decisionRule), fn, () => `decisionRule must be one of ${EAD_RULES.join(', ')}, but got ${show(o.decisionRule)}.`);
  const g = goalRows(labels, r);
  const n = x.shape[0];
  const [lo, hi] = model.bounds;
  const search = new ConstantSearch(n, initialConst);
  const goalT = tf.tensor1d(g.goal, 'int32');
  let best = tf.clone(x);
  let bestScore = tf.fill([n], Infinity) as tf.Tensor1D;
  try {
    for (let b = 0; b < binarySteps; b++) {
      const c4 = tf.tensor4d(search.c.slice(), [n, 1, 1, 1]);
      let cur = tf.clone(x);
      let slack = tf.clone(x);
      let ok = tf.zeros([n], 'bool') as tf.Tensor1D;
      try {
        for (let k = 0; k < r.steps; k++) {
          const rate = lr * Math.sqrt(1 - k / r.steps);
          const mg = await marginGradient(model, slack, g);
          const next = tf.tidy(() => {
            const active = tf.reshape(tf.cast(tf.greater(tf.sub(kappa, mg.margin), 0), 'float32'), [n, 1, 1, 1]);
            const grad = tf.sub(tf.mul(tf.sub(slack, x), 2), tf.mul(tf.mul(c4, active), mg.grad));
            const z = tf.sub(slack, tf.mul(grad, rate));
            const d = tf.sub(z, x);
            const shrunk = tf.where(tf.greater(d, beta), tf.minimum(tf.sub(z, beta), hi),
              tf.where(tf.less(d, -beta), tf.maximum(tf.add(z, beta), lo), x)) as tf.Tensor4D;
            const ahead = tf.clipByValue(tf.add(shrunk, tf.mul(tf.sub(shrunk, cur), k / (k + 3))), lo, hi) as tf.Tensor4D;
            return { cur: shrunk, slack: ahead };
          });
          tf.dispose([mg.logits, mg.grad, mg.margin, cur, slack]);
          ({ cur, slack } = next);
          const z = await logitsAsync(model, cur);
          const kept = tf.tidy(() => {
            const met = kappa > 0 ? tf.greaterEqual(objective('margin', z, goalT, g.targeted), kappa) : goalMet(z, goalT, g.targeted);
            const d = tf.reshape(tf.sub(cur, x), [n, -1]);
            const l1 = tf.sum(tf.abs(d), 1);
            const score = (o.decisionRule === 'l1' ? l1 : tf.add(tf.mul(l1, beta), tf.sum(tf.square(d), 1))) as tf.Tensor1D;
            const better = tf.logicalAnd(met, tf.less(score, bestScore)) as tf.Tensor1D;
            return { best: pickRows(better, cur, best), bestScore: tf.where(better, score, bestScore) as tf.Tensor1D, ok: tf.logicalOr(ok, met) as tf.Tensor1D };
          });
          tf.dispose([z, best, bestScore, ok]);
          ({ best, bestScore, ok } = kept);
        }
        search.update(await ok.data());
      } finally {
        tf.dispose([c4, cur, slack, ok]);
      }
    }
  } catch (err) {
    best.dispose();
    throw err;
  } finally {
    tf.dispose([bestScore, goalT]);
  }
  return minimumNormResult(model, x, best, labels, r);
}
