/**
 * FAB-T — targeted Fast Adaptive Boundary attack (Croce & Hein 2020, "Minimally distorted
 * adversarial examples with a fast adaptive boundary attack", arXiv:1907.02044), L∞ and L2.
 *
 * Threat model: white-box, minimum norm: it looks for the *smallest* perturbation (in the
 * chosen norm) that changes the prediction, so one run answers every eps. Each step
 * linearizes the difference of logits z_y − z_t towards a target class t at the iterate,
 * projects both the iterate and the original point onto that linearized boundary inside the
 * bounds (lp.ts's toHyperplane), and moves to a convex combination of the two projections,
 * overshot by η, weighted towards the original point by α = min(‖δ_iterate‖ / (‖δ_iterate‖ +
 * ‖δ_original‖), α_max). When the point it reaches is adversarial, it is kept if it is the
 * closest so far, and the iterate steps back towards the original by β. Targets are the
 * classes the clean logits rank 2nd, 3rd, ... (top `targets`), run in turn on the samples not
 * yet broken; restarts after the first start from a random point at distance eps/2.
 *
 * The result keeps the eps-ball: `adversarial` is the closest adversarial found when it is
 * within eps, else that point projected onto the ball. `minimumNorm` gives each sample's
 * closest adversarial distance (Infinity when none was found), which the evaluator turns
 * into a robust-accuracy curve over every eps.
 *
 * Options (FAB_DEFAULTS): eps (required), norm 'linf', steps 100, restarts 1, targets 9,
 * alphaMax 0.1, eta 1.05, beta 0.9, seed 0. Shapes: x [N, H, W, C] in the model's bounds;
 * y [N] integer labels.
 *
 * @example
 * const r = await fabT(model, x, y, { eps: 0.3 });
 * console.log(r.minimumNorm); // per-sample smallest L∞ distance to a wrong class
 */
import * as tf from '@tensorflow/tfjs';
import type { Bounds, Classifier } from '../models/classifier.js';
import { checkFiniteNumber, defined } from '../util/errors.js';
import { seedFor } from '../util/random.js';
import { descend, gatherRows, goalMet, rows, runOnRemaining, validateAttack, type AttackResult, type GradientAttackOptions, type StepRule } from './gradient_descent.js';
import { minimumNormResult } from './minimum_norm.js';
import type { Norm } from './lp.js';
import { logitGap } from './losses.js';
import { rankedWrongClasses, type Labels } from './targets.js';

export interface FabOptions extends Pick<GradientAttackOptions, 'eps' | 'norm' | 'steps' | 'restarts' | 'seed'> {
  /** How many of the most likely wrong classes to target in turn. */
  targets?: number;
  /** Largest weight of the step from the original point. */
  alphaMax?: number;
  /** Overshoot of the projections (> 1 lands past the linearized boundary). */
  eta?: number;
  /** Step back towards the original point after reaching an adversarial one. */
  beta?: number;
}

/** Bisection steps of the final boundary search (the segment is known to 2^-16 of its length). */
const REFINE_STEPS = 16;

export const FAB_DEFAULTS = Object.freeze({ norm: 'linf' as const, steps: 100, restarts: 1, targets: 9, alphaMax: 0.1, eta: 1.05, beta: 0.9, seed: 0 });

/** FAB's step rule: projections onto the linearized boundary, convex combination, step back. */
export function fabRule(model: Classifier, norm: Norm, bounds: Bounds, yT: tf.Tensor1D, o: { alphaMax: number; eta: number; beta: number }): StepRule {
  const [lo, hi] = bounds;
  return {
    init: () => ({}),
    step: ({ x, adv, grad, loss }) => {
      const n = x.shape[0];
      const flat = (t: tf.Tensor4D) => tf.reshape(t, [n, -1]) as tf.Tensor2D;
      const w = flat(grad);
      // Linearization of f = z_y − z_t at the iterate: f + w·(p + δ − adv) = 0.
      const fromAdv = tf.neg(loss) as tf.Tensor1D;
      const fromX = tf.sub(fromAdv, tf.sum(tf.mul(w, tf.sub(flat(x), flat(adv))), 1)) as tf.Tensor1D;
      const d1 = tf.reshape(norm.toHyperplane(flat(adv), w, fromAdv, bounds), x.shape) as tf.Tensor4D;
      const d2 = tf.reshape(norm.toHyperplane(flat(x), w, fromX, bounds), x.shape) as tf.Tensor4D;
      const zero = tf.zerosLike(x);
      const a1 = tf.maximum(norm.distance(d1, zero), 1e-8);
      const a2 = tf.maximum(norm.distance(d2, zero), 1e-8);
      const alpha = tf.reshape(tf.minimum(tf.div(a1, tf.add(a1, a2)), o.alphaMax), [-1, 1, 1, 1]);
      const candidate = tf.clipByValue(tf.add(
        tf.mul(tf.add(adv, tf.mul(d1, o.eta)), tf.sub(1, alpha)),
        tf.mul(tf.add(x, tf.mul(d2, o.eta)), alpha)), lo, hi) as tf.Tensor4D;
      const reached = goalMet(model.logits(candidate), yT, false);
      const back = tf.add(x, tf.mul(tf.sub(candidate, x), o.beta));
      const next = tf.where(tf.reshape(reached, [-1, 1, 1, 1]), back, candidate) as tf.Tensor4D;
      return { next, state: {}, candidate };
    },
  };
}

export async function fabT(model: Classifier, x: tf.Tensor4D, y: Labels, options: FabOptions): Promise<AttackResult> {
  const fn = 'fabT';
  const o = { ...FAB_DEFAULTS, ...defined(options) };
  const { labels, resolved: r } = validateAttack(fn, model, x, y, { ...o, loss: 'margin', relStepSize: 1 });
  const count = Math.min(checkFiniteNumber(fn, 'targets', o.targets, { integer: true, min: 1 }), model.numClasses - 1);
  const alphaMax = checkFiniteNumber(fn, 'alphaMax', o.alphaMax, { min: 0, max: 1 });
  const eta = checkFiniteNumber(fn, 'eta', o.eta, { min: 1 });
  const beta = checkFiniteNumber(fn, 'beta', o.beta, { min: 0, max: 1 });
  const targets = rankedWrongClasses(model, x, labels, count);
  const n = x.shape[0];
  const out = await runOnRemaining(n, count * r.restarts, async (run, idx) => {
    const rank = Math.floor(run / r.restarts);
    const restart = run % r.restarts;
    const xs = gatherRows(x, idx);
    const yRows = rows(labels, idx);
    const tRows = rows(targets[rank]!, idx);
    const yT = tf.tensor1d(yRows, 'int32');
    const tT = tf.tensor1d(tRows, 'int32');
    const seeds = rows(r.seeds, idx);
    try {
      return await descend(model, xs, {
      // f = z_y − z_t: the target's boundary is f = 0.
      objective: (z) => logitGap(z, yT, tT),
      spec: { kind: 'gap', labels: yRows, other: tRows },
      met: (z) => goalMet(z, yT, false),
      rule: fabRule(model, r.norm, model.bounds, yT, { alphaMax, eta, beta }),
      start: () => (restart === 0 ? tf.clone(xs) : tf.tidy(() => r.norm.project(tf.add(xs, r.norm.randomStart(xs.shape, r.eps / 2, seeds.map((s) => seedFor(s, restart)))) as tf.Tensor4D, xs, r.eps / 2, model.bounds))),
      steps: r.steps,
        keep: 'closest',
        norm: r.norm,
      });
    } finally {
      tf.dispose([xs, yT, tT]);
    }
  });
  // FAB overshoots by η; a bisection along the segment from x to the closest adversarial
  // point finds where the segment crosses the boundary (exact on a linear model).
  let point: tf.Tensor4D;
  try {
    point = tf.tidy(() => {
      const yAll = tf.tensor1d(labels, 'int32');
      const dir = tf.sub(out.adv, x);
      let lo = tf.zeros([n]) as tf.Tensor1D;
      let hi = tf.ones([n]) as tf.Tensor1D;
      for (let it = 0; it < REFINE_STEPS; it++) {
        const mid = tf.mul(tf.add(lo, hi), 0.5) as tf.Tensor1D;
        const ok = tf.logicalAnd(out.success, goalMet(model.logits(tf.add(x, tf.mul(dir, tf.reshape(mid, [-1, 1, 1, 1]))) as tf.Tensor4D), yAll, false));
        hi = tf.where(ok, mid, hi) as tf.Tensor1D;
        lo = tf.where(ok, lo, mid) as tf.Tensor1D;
      }
      return tf.add(x, tf.mul(dir, tf.reshape(hi, [-1, 1, 1, 1]))) as tf.Tensor4D;
    });
  } finally {
    tf.dispose([out.adv, out.success, out.score]);
  }
  return minimumNormResult(model, x, point, labels, r);
}
