/**
 * APGD — Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an
 * ensemble of diverse parameter-free attacks", arXiv:2003.01690), and APGD-T, its targeted
 * DLR form over the most likely classes.
 *
 * Threat model: white-box, L∞ or L2 ball of radius eps. Parameter-free: the step size starts
 * at 2·eps and is halved at checkpoints (after 22% of the steps, then at windows shrinking by
 * 3% of the steps down to 6%) for every sample whose objective rose in at most ρ = 75% of the
 * window's steps, or which did not improve since the last checkpoint and was not halved
 * there; a halved sample restarts from its best point. Steps carry momentum 0.75:
 * x ← P(x + 0.75·(P(x + η·normalize(∇)) − x) + 0.25·(x − x_prev)). Each sample keeps the
 * first success it reaches, else its highest objective.
 *
 * - `apgd`: untargeted (or targeted with goal) on 'ce' (APGD-CE) or 'dlr' (APGD-DLR).
 * - `apgdT`: untargeted success, reached through the targeted DLR loss towards each of the
 *   `targets` (default 9) classes the clean logits rank highest after the true one, run in
 *   turn on the samples not yet broken (with fewer than 4 classes, the pairwise margin
 *   z_t − z_y replaces the DLR ratio, which needs four logits).
 *
 * Options (APGD_DEFAULTS): eps (required), norm 'linf', steps 100, restarts 1, rho 0.75,
 * loss 'ce', seed 0; apgdT adds targets 9. Shapes: x [N, H, W, C] in the model's bounds;
 * y [N] integer labels.
 *
 * @example
 * const r = await apgdT(model, x, y, { eps: 8 / 255, steps: 100, targets: 9 });
 */
import * as tf from '@tensorflow/tfjs';
import type { Bounds, Classifier } from '../models/classifier.js';
import { checkFiniteNumber, defined } from '../util/errors.js';
import { attackHooks, descend, finalizeResult, gatherRows, rows, runOnRemaining, validateAttack, type AttackResult, type GradientAttackOptions, type Resolved, type StepRule } from './gradient_descent.js';
import { logitGap, objective } from './losses.js';
import { rankedWrongClasses, type Labels } from './targets.js';

export interface ApgdOptions extends Pick<GradientAttackOptions, 'eps' | 'norm' | 'steps' | 'restarts' | 'loss' | 'goal' | 'seed'> {
  /** Fraction of a window's steps in which the objective must rise to keep the step size. */
  rho?: number;
}

export interface ApgdTOptions extends Omit<ApgdOptions, 'loss' | 'goal'> {
  /** How many of the most likely wrong classes to target in turn (AutoAttack: 9). */
  targets?: number;
}

export const APGD_DEFAULTS = Object.freeze({ norm: 'linf' as const, steps: 100, restarts: 1, rho: 0.75, loss: 'ce' as const, seed: 0 });
export const APGDT_DEFAULTS = Object.freeze({ norm: 'linf' as const, steps: 100, restarts: 1, rho: 0.75, targets: 9, seed: 0 });

/**
 * The iterations at which APGD checks its step size, with the length of the window each
 * closes: the first after 22% of the steps, then windows 3% shorter, never below 6%.
 */
export function apgdCheckpoints(steps: number): Map<number, number> {
  const first = Math.max(Math.floor(0.22 * steps), 1);
  const shrink = Math.max(Math.floor(0.03 * steps), 1);
  const least = Math.max(Math.floor(0.06 * steps), 1);
  const out = new Map<number, number>();
  for (let at = first, k = first; at < steps; k = Math.max(k - shrink, least), at += k) out.set(at, k);
  return out;
}

/** APGD's step rule for a batch of n samples. */
export function apgdRule(r: Resolved, bounds: Bounds, n: number, rho: number): StepRule {
  const checks = apgdCheckpoints(r.steps);
  const per = (t: tf.Tensor1D) => tf.reshape(t, [-1, 1, 1, 1]);
  return {
    init: (_x, start) => ({ prev: tf.clone(start), eta: tf.fill([n], 2 * r.eps), rises: tf.zeros([n]) }),
    step: ({ i, x, adv, grad, loss }, s) => {
      // Best point so far (the start counts), and how often the objective rose in this window.
      const improved = i === 0 ? tf.onesLike(loss).cast('bool') : tf.greater(loss, s.bestLoss!);
      const bestLoss = tf.where(improved, loss, s.bestLoss ?? loss) as tf.Tensor1D;
      const bestX = tf.where(per(improved as tf.Tensor1D), adv, s.bestX ?? adv) as tf.Tensor4D;
      const bestGrad = tf.where(per(improved as tf.Tensor1D), grad, s.bestGrad ?? grad) as tf.Tensor4D;
      let rises = i === 0 ? s.rises! : (tf.add(s.rises!, tf.cast(tf.greater(loss, s.lastLoss!), 'float32')) as tf.Tensor1D);
      let eta = s.eta as tf.Tensor1D;
      let at = adv;
      let g = grad;
      let reduced = s.reduced ?? tf.onesLike(loss).cast('bool');
      let bestAtCheck = s.bestAtCheck ?? loss;
      const window = checks.get(i);
      if (window !== undefined) {
        const oscillating = tf.lessEqual(rises, window * rho);
        const stalled = tf.logicalAnd(tf.logicalNot(reduced), tf.greaterEqual(bestAtCheck, bestLoss));
        const halve = tf.logicalOr(oscillating, stalled) as tf.Tensor1D;
        eta = tf.where(halve, tf.div(eta, 2), eta) as tf.Tensor1D;
        at = tf.where(per(halve), bestX, adv) as tf.Tensor4D;
        g = tf.where(per(halve), bestGrad, grad) as tf.Tensor4D;
        reduced = halve;
        bestAtCheck = bestLoss;
        rises = tf.zerosLike(rises);
      }
      const a = i === 0 ? 1 : 0.75;
      const z = r.norm.project(tf.add(at, tf.mul(r.norm.normalize(g, at, bounds), per(eta))) as tf.Tensor4D, x, r.eps, bounds);
      const moved = tf.add(tf.add(at, tf.mul(tf.sub(z, at), a)), tf.mul(tf.sub(at, s.prev!), 1 - a)) as tf.Tensor4D;
      const next = r.norm.project(moved, x, r.eps, bounds);
      return { next, state: { prev: tf.clone(at), eta, rises, lastLoss: tf.clone(loss), bestLoss, bestX, bestGrad, reduced, bestAtCheck: tf.clone(bestAtCheck) } };
    },
  };
}

function resolveApgd(fn: string, model: Classifier, x: tf.Tensor4D, y: Labels, o: ApgdOptions & { steps: number }) {
  const rho = checkFiniteNumber(fn, 'rho', o.rho ?? APGD_DEFAULTS.rho, { min: 0, max: 1 });
  const v = validateAttack(fn, model, x, y, { ...o, randomStart: true, relStepSize: 2 });
  return { ...v, rho };
}

export async function apgd(model: Classifier, x: tf.Tensor4D, y: Labels, options: ApgdOptions): Promise<AttackResult> {
  const fn = 'apgd';
  const o = { ...APGD_DEFAULTS, ...defined(options) };
  const { labels, resolved: r, rho } = resolveApgd(fn, model, x, y, o);
  const out = await runOnRemaining(x.shape[0], r.restarts, async (k, idx) => {
    const xs = gatherRows(x, idx);
    const hooks = attackHooks(model, xs, labels, r, k, idx, apgdRule(r, model.bounds, xs.shape[0], rho), 'strongest');
    try {
      return await descend(model, xs, hooks);
    } finally {
      hooks.dispose();
      xs.dispose();
    }
  });
  tf.dispose([out.success, out.score]);
  return finalizeResult(model, x, out.adv, labels, r);
}

export async function apgdT(model: Classifier, x: tf.Tensor4D, y: Labels, options: ApgdTOptions): Promise<AttackResult> {
  const fn = 'apgdT';
  const o = { ...APGDT_DEFAULTS, ...defined(options) };
  const { labels, resolved: r, rho } = resolveApgd(fn, model, x, y, { ...o, loss: 'dlr' });
  const count = Math.min(checkFiniteNumber(fn, 'targets', o.targets, { integer: true, min: 1 }), model.numClasses - 1);
  const targets = rankedWrongClasses(model, x, labels, count);
  const fourPlus = model.numClasses >= 4;
  const out = await runOnRemaining(x.shape[0], count * r.restarts, async (run, idx) => {
    const rank = Math.floor(run / r.restarts);
    const restart = run % r.restarts;
    const xs = gatherRows(x, idx);
    const tRows = rows(targets[rank]!, idx);
    const tT = tf.tensor1d(tRows, 'int32');
    // Untargeted success, reached through the targeted loss towards this run's class.
    const toTarget = {
      fn: (z: tf.Tensor2D, yT: tf.Tensor1D) => (fourPlus ? objective('dlr', z, tT, true, yT) : logitGap(z, tT, yT)),
      spec: { kind: fourPlus ? 'dlr-targeted' : 'gap', labels: tRows, other: rows(labels, idx) } as const,
    };
    const hooks = attackHooks(model, xs, labels, r, restart, idx, apgdRule(r, model.bounds, xs.shape[0], rho), 'strongest', toTarget);
    try {
      return await descend(model, xs, hooks);
    } finally {
      hooks.dispose();
      tf.dispose([xs, tT]);
    }
  });
  tf.dispose([out.success, out.score]);
  return finalizeResult(model, x, out.adv, labels, r);
}
