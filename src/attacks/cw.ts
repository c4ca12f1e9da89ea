/**
 * Carlini–Wagner L2 (Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural
 * Networks", arXiv:1608.04644).
 *
 * Threat model: white-box, minimum norm (L2), untargeted or targeted. It minimizes
 * ‖x' − x‖₂² + c·max(κ − g(x'), 0) over x' = lo + (hi − lo)·(tanh(w) + 1)/2, so every iterate
 * lies inside the bounds, with Adam on w; g is the margin of the goal (untargeted
 * max_{j≠y} z_j − z_y, targeted z_t − max_{j≠t} z_j) and κ the confidence. The constant c is
 * searched per sample (binary search: halved towards failure after a success, grown tenfold
 * while none is known). Each sample keeps the closest iterate that met the goal with margin
 * at least κ, over all constants. Within a run, a sample whose objective has not fallen by
 * 0.01% over a tenth of the steps stops (the paper's abort-early, per sample so a sample's
 * result does not depend on its batch).
 *
 * w starts at atanh of the image scaled by 1 − 1e-6 (the paper's way around atanh(±1) = ±∞).
 * Pixels exactly at a bound therefore start deep in tanh's flat tail, where Adam's step in w
 * moves them little: over short budgets they barely move.
 *
 * `minimumNorm` is each sample's closest adversarial L2 distance (Infinity where none met the
 * goal); `adversarial` that point, projected into the eps-ball when it lies beyond eps.
 *
 * Options (CW_DEFAULTS): eps (required), norm 'l2' (the only one), steps 100 per constant,
 * binarySteps 9, initialConst 1e-3, confidence 0, learningRate 0.01, goal untargeted,
 * abortEarly true. Shapes: x [N, H, W, C] in the model's bounds; y [N] integer labels.
 *
 * @example
 * const r = await cw(model, x, y, { eps: 2, binarySteps: 5, steps: 200 });
 * console.log(r.minimumNorm); // per-sample L2 distance to the closest adversarial found
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, defined, show } from '../util/errors.js';
import { goalMet, validateAttack, type AttackResult, type GradientAttackOptions } from './gradient_descent.js';
import { ConstantSearch, goalRows, marginGradient, minimumNormResult, pickRows } from './minimum_norm.js';
import type { Labels } from './targets.js';

export interface CwOptions extends Pick<GradientAttackOptions, 'eps' | 'norm' | 'steps' | 'seed' | 'goal'> {
  /** Runs of the optimization, each with the constants the binary search moves to. */
  binarySteps?: number;
  /** The constant c of the first run. */
  initialConst?: number;
  /** κ: the margin the goal must be met by. */
  confidence?: number;
  /** Adam's step size on w. */
  learningRate?: number;
  /** Stop a sample's run when its objective stops falling. */
  abortEarly?: boolean;
}

export const CW_DEFAULTS = Object.freeze({ norm: 'l2' as const, steps: 100, binarySteps: 9, initialConst: 1e-3, confidence: 0, learningRate: 0.01, abortEarly: true, seed: 0 });

const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
/** The paper's shrink of the image before atanh, so pixels at a bound map to finite w. */
const TANH_SHRINK = 1 - 1e-6;

export async function cw(model: Classifier, x: tf.Tensor4D, y: Labels, options: CwOptions): Promise<AttackResult> {
  const fn = 'cw';
  const o = { ...CW_DEFAULTS, ...defined(options) };
  check(o.norm === 'l2', fn, () => `Carlini–Wagner here is the L2 attack, but got norm ${show(o.norm)}; use ead for L1, or fmn or deepfool for L∞.`);
  const { labels, resolved: r } = validateAttack(fn, model, x, y, { ...o, loss: 'margin', relStepSize: 1 });
  const binarySteps = checkFiniteNumber(fn, 'binarySteps', o.binarySteps, { integer: true, min: 1 });
  const initialConst = checkFiniteNumber(fn, 'initialConst', o.initialConst, { min: 0, minExclusive: true });
  const kappa = checkFiniteNumber(fn, 'confidence', o.confidence, { min: 0 });
  const lr = checkFiniteNumber(fn, 'learningRate', o.learningRate, { min: 0, minExclusive: true });
  check(typeof o.abortEarly === 'boolean', fn, () => `abortEarly must be true or false, but got ${show(o.abortEarly)}.`);
  const g = goalRows(labels, r);
  const n = x.shape[0];
  const [lo, hi] = model.bounds;
  const half = (hi - lo) / 2;
  const search = new ConstantSearch(n, initialConst);
  const w0 = tf.tidy(() => tf.atanh(tf.mul(tf.clipByValue(tf.sub(tf.div(tf.sub(x, lo), half), 1), -1, 1), TANH_SHRINK)) as tf.Tensor4D);
  const toImage = (w: tf.Tensor4D) => tf.tidy(() => tf.add(tf.mul(tf.add(tf.tanh(w), 1), half), lo) as tf.Tensor4D);
  // Over all constants: the closest point meeting the goal with margin κ, and its squared L2.
  let best = tf.clone(x);
  let bestSq = tf.fill([n], Infinity) as tf.Tensor1D;
  const goalT = tf.tensor1d(g.goal, 'int32');
  const checkEvery = Math.max(1, Math.floor(r.steps / 10));
  try {
    for (let b = 0; b < binarySteps; b++) {
      const cT = search.c.slice();
      const c4 = tf.tensor4d(cT, [n, 1, 1, 1]);
      let w = tf.clone(w0);
      let m = tf.zerosLike(x) as tf.Tensor4D;
      let v = tf.zerosLike(x) as tf.Tensor4D;
      let ok = tf.zeros([n], 'bool') as tf.Tensor1D; // met the goal at this constant
      let running = tf.ones([n], 'bool') as tf.Tensor1D;
      let prev = tf.fill([n], Infinity) as tf.Tensor1D;
      try {
        for (let t = 1; t <= r.steps; t++) {
          const img = toImage(w);
          const mg = await marginGradient(model, img, g);
          const next = tf.tidy(() => {
            const sq = tf.sum(tf.square(tf.reshape(tf.sub(img, x), [n, -1])), 1) as tf.Tensor1D;
            const hinge = tf.maximum(tf.sub(kappa, mg.margin), 0);
            const loss = tf.add(sq, tf.mul(tf.reshape(c4, [n]), hinge)) as tf.Tensor1D;
            // Met with margin κ (κ = 0: the prediction is the goal's).
            const met = kappa > 0 ? tf.greaterEqual(mg.margin, kappa) : goalMet(mg.logits, goalT, g.targeted);
            const closer = tf.logicalAnd(met, tf.less(sq, bestSq)) as tf.Tensor1D;
            const active = tf.cast(tf.greater(hinge, 0), 'float32');
            // ∂loss/∂x' = 2(x' − x) − c·1[hinge active]·∂g/∂x', then through x'(w).
            const dImg = tf.sub(tf.mul(tf.sub(img, x), 2), tf.mul(tf.mul(c4, tf.reshape(active, [n, 1, 1, 1])), mg.grad));
            const dW = tf.mul(dImg, tf.mul(tf.sub(1, tf.square(tf.tanh(w))), half));
            const m2 = tf.add(tf.mul(m, ADAM.beta1), tf.mul(dW, 1 - ADAM.beta1)) as tf.Tensor4D;
            const v2 = tf.add(tf.mul(v, ADAM.beta2), tf.mul(tf.square(dW), 1 - ADAM.beta2)) as tf.Tensor4D;
            const stepSize = (lr * Math.sqrt(1 - ADAM.beta2 ** t)) / (1 - ADAM.beta1 ** t);
            const moved = tf.sub(w, tf.div(tf.mul(m2, stepSize), tf.add(tf.sqrt(v2), ADAM.epsilon))) as tf.Tensor4D;
            let runningNext = running;
            let prevNext = prev;
            if (o.abortEarly && t % checkEvery === 0) {
              runningNext = tf.logicalAnd(running, tf.less(loss, tf.mul(prev, 0.9999))) as tf.Tensor1D;
              prevNext = tf.where(running, loss, prev) as tf.Tensor1D;
            }
            return {
              w: pickRows(running, moved, w), m: pickRows(running, m2, m), v: pickRows(running, v2, v),
              best: pickRows(closer, img, best), bestSq: tf.where(closer, sq, bestSq) as tf.Tensor1D,
              ok: tf.logicalOr(ok, met) as tf.Tensor1D, running: tf.clone(runningNext), prev: tf.clone(prevNext),
            };
          });
          tf.dispose([img, mg.logits, mg.grad, mg.margin, w, m, v, best, bestSq, ok, running, prev]);
          ({ w, m, v, best, bestSq, ok, running, prev } = next);
          if (o.abortEarly && t % checkEvery === 0 && !(await anyOf(running))) break;
        }
        search.update(await ok.data());
      } finally {
        tf.dispose([c4, w, m, v, ok, running, prev]);
      }
    }
  } catch (err) {
    best.dispose();
    throw err;
  } finally {
    tf.dispose([w0, bestSq, goalT]);
  }
  return minimumNormResult(model, x, best, labels, r);
}


/** Whether any entry of a boolean vector is set (one host read). */
async function anyOf(t: tf.Tensor1D): Promise<boolean> {
  const a = tf.any(t);
  try {
    return (await a.data())[0] === 1;
  } finally {
    a.dispose();
  }
}
