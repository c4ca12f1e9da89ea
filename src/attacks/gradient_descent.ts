/**
 * The one gradient-descent loop behind every gradient attack (FGSM, BIM, PGD, MI-FGSM), in the
 * manner of Foolbox 3: the norm supplies random start, gradient normalization, projection and
 * distance (lp.ts); the loss supplies the objective (losses.ts); FGSM is this loop with one
 * full step. Step sizes are relative to eps by default, so one setting works across a sweep.
 *
 * Every iteration runs inside `tf.tidy` with no host reads; previous iterates are disposed.
 * The result is re-checked: predictions, success and norms are computed from the returned
 * batch, never carried over from inside the loop.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, InvalidArgumentError, show } from '../util/errors.js';
import { deriveSeed } from '../util/random.js';
import { linf, l2, NORMS, type Norm, type NormName } from './lp.js';
import { LOSSES, objective, type LossName } from './losses.js';
import { labelsToArray, UNTARGETED, type Goal, type Labels } from './targets.js';

export interface GradientAttackOptions {
  /** Radius of the threat model, in pixel units (the classifier's bounds). */
  eps: number;
  /** 'linf' (default) or 'l2'. */
  norm?: NormName;
  /** Gradient steps per restart. */
  steps?: number;
  /** Step size as a fraction of eps. Ignored when absStepSize is given. */
  relStepSize?: number;
  /** Step size in pixel units. */
  absStepSize?: number;
  /** Start from a uniform random point of the eps-ball instead of x. */
  randomStart?: boolean;
  /** Independent runs; each sample keeps its strongest result (success first, then loss). */
  restarts?: number;
  /** Objective: 'ce' (default), 'margin' (Carlini–Wagner) or 'dlr' (Croce & Hein). */
  loss?: LossName;
  /** Untargeted (default) or targeted with labels. */
  goal?: Goal;
  /**
   * Seed for the random start: one number for the batch (sample i uses a seed derived from it
   * and i), or one seed per sample, which makes each sample's result independent of the batch
   * it is in (attackDataset passes seeds derived from example ids). Default 0.
   */
  seed?: number | ArrayLike<number>;
  /** Samples that already meet the goal stop moving (per-sample early stopping). */
  earlyStop?: boolean;
  /** Momentum decay μ (MI-FGSM); 0 turns momentum off. */
  momentum?: number;
}

export interface AttackResult {
  /** The adversarial batch [N, H, W, C], inside the eps-ball around x and the bounds. Caller disposes. */
  adversarial: tf.Tensor4D;
  /** 1 where the goal is met on `adversarial`. */
  success: Uint8Array;
  /** Predicted classes on `adversarial`. */
  predictions: Int32Array;
  /** Per-sample distances between `adversarial` and x. */
  norms: { linf: Float32Array; l2: Float32Array };
  /** Gradient steps per restart. */
  steps: number;
  restarts: number;
  /** Final value of the objective per sample. */
  loss: Float32Array;
}

export type Attack<O extends Partial<GradientAttackOptions> = Partial<GradientAttackOptions>> =
  (model: Classifier, x: tf.Tensor4D, y: Labels, options: O & { eps: number }) => Promise<AttackResult>;

interface Resolved {
  eps: number;
  norm: Norm;
  steps: number;
  stepSize: number;
  randomStart: boolean;
  restarts: number;
  loss: LossName;
  targets?: Int32Array;
  seeds: Int32Array;
  earlyStop: boolean;
  momentum: number;
}

/** Checks the inputs of an attack; every message names the attack, the argument and the value. */
export function validateAttack(fn: string, model: Classifier, x: tf.Tensor4D, y: Labels, o: GradientAttackOptions & { steps: number }): { labels: Int32Array; resolved: Resolved } {
  check(x instanceof tf.Tensor && x.rank === 4, fn, () => `x must be a rank-4 tensor [N, H, W, C], but got ${x instanceof tf.Tensor ? `rank ${x.rank}` : show(x)}.`);
  const [, h, w, c] = x.shape;
  check(h === model.inputShape[0] && w === model.inputShape[1] && c === model.inputShape[2], fn,
    () => `x has images of shape [${h}, ${w}, ${c}] but the model takes [${model.inputShape.join(', ')}].`);
  const labels = labelsToArray(y);
  check(labels.length === x.shape[0], fn, () => `y has ${labels.length} labels but x has ${x.shape[0]} images; pass one label per image.`);
  const badLabel = labels.findIndex((l) => !(Number.isInteger(l) && l >= 0 && l < model.numClasses));
  check(badLabel < 0, fn, () => `y[${badLabel}] = ${labels[badLabel]} is not a class of this model (0..${model.numClasses - 1}).`);
  const eps = checkFiniteNumber(fn, 'eps', o.eps, { min: 0 });
  const steps = checkFiniteNumber(fn, 'steps', o.steps, { integer: true, min: 1 });
  const restarts = checkFiniteNumber(fn, 'restarts', o.restarts ?? 1, { integer: true, min: 1 });
  const seedOpt = o.seed ?? 0;
  let seeds: Int32Array;
  if (typeof seedOpt === 'number') {
    const seed = checkFiniteNumber(fn, 'seed', seedOpt, { integer: true, min: 0 });
    seeds = Int32Array.from({ length: labels.length }, (_, i) => deriveSeed(seed, i) & 0x7fffffff);
  } else {
    check(seedOpt.length === labels.length, fn, () => `seed has ${seedOpt.length} per-sample seeds but x has ${labels.length} images.`);
    seeds = Int32Array.from(seedOpt, (v) => checkFiniteNumber(fn, 'seed[i]', v, { integer: true, min: 0 }) & 0x7fffffff);
  }
  const momentum = checkFiniteNumber(fn, 'momentum', o.momentum ?? 0, { min: 0 });
  const normName = o.norm ?? 'linf';
  check(normName in NORMS, fn, () => `norm must be 'linf' or 'l2', but got ${show(normName)}.`);
  const loss = o.loss ?? 'ce';
  check((LOSSES as readonly string[]).includes(loss), fn, () => `loss must be one of ${LOSSES.join(', ')}, but got ${show(loss)}.`);
  // With eps = 0 nothing can move, so any step size (FGSM's is eps) is accepted.
  const stepOpts = { min: 0, minExclusive: eps > 0 };
  const stepSize = o.absStepSize !== undefined
    ? checkFiniteNumber(fn, 'absStepSize', o.absStepSize, stepOpts)
    : eps * checkFiniteNumber(fn, 'relStepSize', o.relStepSize ?? 2.5 / steps, { min: 0, minExclusive: true });
  const goal = o.goal ?? UNTARGETED;
  let targets: Int32Array | undefined;
  if (goal.kind === 'targeted') {
    targets = labelsToArray(goal.labels);
    check(targets.length === labels.length, fn, () => `goal.labels has ${targets!.length} targets but x has ${labels.length} images.`);
    const bad = targets.findIndex((t) => !(Number.isInteger(t) && t >= 0 && t < model.numClasses));
    check(bad < 0, fn, () => `goal.labels[${bad}] = ${targets![bad]} is not a class of this model (0..${model.numClasses - 1}).`);
    if (loss === 'dlr') check(model.numClasses >= 4, fn, () => `targeted DLR needs at least 4 classes, but the model has ${model.numClasses}.`);
  } else {
    check(goal.kind === 'untargeted', fn, () => `goal must be { kind: 'untargeted' } or { kind: 'targeted', labels }, but got ${show(goal)}.`);
  }
  const [lo, hi] = model.bounds;
  const range = tf.tidy(() => tf.stack([tf.min(x), tf.max(x)]));
  const [min, max] = range.dataSync();
  range.dispose();
  if (!(min! >= lo && max! <= hi)) {
    throw new InvalidArgumentError(`Error in ${fn}: x has values in [${min}, ${max}], outside the model's bounds [${lo}, ${hi}]; scale the images to the bounds (normalization belongs inside the classifier).`);
  }
  return {
    labels,
    resolved: { eps, norm: NORMS[normName as NormName], steps, stepSize, randomStart: o.randomStart ?? false, restarts, loss, targets, seeds, earlyStop: o.earlyStop ?? false, momentum },
  };
}

/** 1 where the goal is met by logits z: untargeted, argmax ≠ y; targeted, argmax = target. */
export function goalMet(z: tf.Tensor2D, labels: tf.Tensor1D, isTargeted: boolean): tf.Tensor1D {
  return tf.tidy(() => {
    const pred = tf.argMax(z, 1);
    return (isTargeted ? tf.equal(pred, labels) : tf.notEqual(pred, labels)) as tf.Tensor1D;
  });
}

function l1Normalize(g: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.div(g, tf.add(tf.reshape(tf.sum(tf.abs(tf.reshape(g, [g.shape[0], -1])), 1), [g.shape[0], 1, 1, 1]), 1e-12)));
}

/** Runs the loop with validated options and re-checks its result (see finalize). */
export async function runGradientAttack(fn: string, model: Classifier, x: tf.Tensor4D, y: Labels, options: GradientAttackOptions & { steps: number }): Promise<AttackResult> {
  const { labels, resolved: r } = validateAttack(fn, model, x, y, options);
  const adversarial = search(model, x, labels, r);
  const yT = tf.tensor1d(labels, 'int32');
  const goalT = r.targets ? tf.tensor1d(r.targets, 'int32') : yT;
  const result = await finalize(model, x, adversarial, yT, goalT, r.targets !== undefined, r.loss);
  tf.dispose(goalT === yT ? [yT] : [yT, goalT]);
  return { ...result, steps: r.steps, restarts: r.restarts };
}

/**
 * The adversarial batch alone, without the re-check of predictions and norms: for training
 * loops, which need only the inputs. Same options, same batch as runGradientAttack.
 */
export function gradientAttackExamples(fn: string, model: Classifier, x: tf.Tensor4D, y: Labels, options: GradientAttackOptions & { steps: number }): tf.Tensor4D {
  const { labels, resolved } = validateAttack(fn, model, x, y, options);
  return search(model, x, labels, resolved);
}

/** The loop: every restart from its start, each sample keeping its strongest result. */
function search(model: Classifier, x: tf.Tensor4D, labels: Int32Array, r: Resolved): tf.Tensor4D {
  const n = x.shape[0];
  const isTargeted = r.targets !== undefined;
  const yT = tf.tensor1d(labels, 'int32');
  const goalT = r.targets ? tf.tensor1d(r.targets, 'int32') : yT;
  const step = (adv: tf.Tensor4D, m: tf.Tensor4D | undefined, done: tf.Tensor1D | undefined) => tf.tidy(() => {
    let z: tf.Tensor2D | undefined;
    const g = tf.grad((a: tf.Tensor) => {
      const logits = model.logits(a as tf.Tensor4D);
      z = tf.keep(logits);
      return tf.sum(objective(r.loss, logits, goalT, isTargeted, yT));
    })(adv) as tf.Tensor4D;
    let dir: tf.Tensor4D = g;
    let mNext: tf.Tensor4D | undefined;
    if (m) {
      mNext = tf.add(tf.mul(m, r.momentum), l1Normalize(g)) as tf.Tensor4D;
      dir = mNext;
    }
    let next = r.norm.project(tf.add(adv, tf.mul(r.norm.normalize(dir, adv, model.bounds), r.stepSize)) as tf.Tensor4D, x, r.eps, model.bounds);
    let doneNext: tf.Tensor1D | undefined;
    if (done) {
      // Samples meeting the goal at the current iterate stay where they are.
      doneNext = tf.logicalOr(done, goalMet(z!, goalT, isTargeted)) as tf.Tensor1D;
      next = tf.where(tf.reshape(doneNext, [n, 1, 1, 1]), adv, next) as tf.Tensor4D;
    }
    z!.dispose();
    return { next, mNext, doneNext };
  });

  let best: { adv: tf.Tensor4D; success: tf.Tensor1D; loss: tf.Tensor1D } | undefined;
  for (let restart = 0; restart < r.restarts; restart++) {
    let adv = r.randomStart
      ? tf.tidy(() => r.norm.project(tf.add(x, r.norm.randomStart(x.shape, r.eps, restart === 0 ? r.seeds : r.seeds.map((s) => deriveSeed(s, restart) & 0x7fffffff))) as tf.Tensor4D, x, r.eps, model.bounds))
      : tf.clone(x);
    let m = r.momentum > 0 ? tf.zerosLike(x) : undefined;
    let done = r.earlyStop ? (tf.zeros([n], 'bool') as tf.Tensor1D) : undefined;
    for (let s = 0; s < r.steps; s++) {
      const out = step(adv, m, done);
      tf.dispose([adv, m, done].filter((t) => t !== undefined) as tf.Tensor[]);
      adv = out.next;
      m = out.mNext;
      done = out.doneNext;
    }
    tf.dispose([m, done].filter((t) => t !== undefined) as tf.Tensor[]);
    if (r.restarts === 1) {
      // One start: nothing to choose between, so no scoring pass.
      best = { adv, success: tf.zeros([n], 'bool'), loss: tf.zeros([n]) };
      break;
    }
    const scored = tf.tidy(() => {
      const z = model.logits(adv);
      return { success: goalMet(z, goalT, isTargeted), loss: objective(r.loss, z, goalT, isTargeted, yT) };
    });
    if (!best) {
      best = { adv, ...scored };
    } else {
      const prev: { adv: tf.Tensor4D; success: tf.Tensor1D; loss: tf.Tensor1D } = best;
      best = tf.tidy(() => {
        const newWins = tf.logicalAnd(scored.success, tf.logicalNot(prev.success));
        const tieBetter = tf.logicalAnd(tf.equal(scored.success, prev.success), tf.logicalAnd(tf.logicalNot(prev.success), tf.greater(scored.loss, prev.loss)));
        const take = tf.logicalOr(newWins, tieBetter) as tf.Tensor1D;
        return {
          adv: tf.where(tf.reshape(take, [n, 1, 1, 1]), adv, prev.adv) as tf.Tensor4D,
          success: tf.logicalOr(prev.success, scored.success) as tf.Tensor1D,
          loss: tf.where(take, scored.loss, prev.loss) as tf.Tensor1D,
        };
      });
      tf.dispose([prev.adv, prev.success, prev.loss, adv, scored.success, scored.loss]);
    }
  }
  tf.dispose([best!.success, best!.loss, yT]);
  if (goalT !== yT) goalT.dispose();
  return best!.adv;
}

/** Re-checks a candidate adversarial batch: predictions, success, loss and norms from scratch. */
async function finalize(model: Classifier, x: tf.Tensor4D, adversarial: tf.Tensor4D, yT: tf.Tensor1D, goalT: tf.Tensor1D, isTargeted: boolean, loss: LossName): Promise<Omit<AttackResult, 'steps' | 'restarts'>> {
  const t = tf.tidy(() => {
    const z = model.logits(adversarial);
    return {
      pred: tf.argMax(z, 1),
      success: goalMet(z, goalT, isTargeted).toInt(),
      loss: objective(loss, z, goalT, isTargeted, yT),
      linf: linf.distance(adversarial, x),
      l2: l2.distance(adversarial, x),
    };
  });
  const [pred, success, lossV, dLinf, dL2] = await Promise.all([t.pred.data(), t.success.data(), t.loss.data(), t.linf.data(), t.l2.data()]);
  tf.dispose([t.pred, t.success, t.loss, t.linf, t.l2]);
  return {
    adversarial,
    predictions: Int32Array.from(pred),
    success: Uint8Array.from(success),
    loss: Float32Array.from(lossV),
    norms: { linf: Float32Array.from(dLinf), l2: Float32Array.from(dL2) },
  };
}
