/**
 * The one gradient-descent loop behind every gradient attack, in the manner of Foolbox 3: the
 * norm supplies random start, gradient normalization, projection and distance (lp.ts); the
 * objective is a hook (losses.ts, or any per-sample function of the logits, such as TRADES'
 * KL term); the step rule is a hook. FGSM, BIM and PGD use the fixed step, MI-FGSM adds a
 * momentum rule (mifgsm.ts), APGD the step-size schedule with checkpoints (apgd.ts), FAB its
 * boundary projection (fab.ts). The loop also keeps, per sample, the best iterate it has seen
 * when asked ('strongest': success first, then objective; 'closest': success first, then the
 * smallest distance), and runs restarts and target classes only on the samples still not
 * broken, keeping each sample's best result over runs.
 *
 * Every iteration runs inside `tf.tidy` with no host reads; previous iterates are disposed.
 * The result is re-checked: predictions, success and norms are computed from the returned
 * batch, never carried over from inside the loop.
 */
import * as tf from '@tensorflow/tfjs';
import { logitsAsync, type Bounds, type Classifier } from '../models/classifier.js';
import type { ObjectiveSpec } from '../models/native.js';
import { check, checkFiniteNumber, checkKnownOptions, InvalidArgumentError, show } from '../util/errors.js';
import { seedFor } from '../util/random.js';
import { measureDistances, NORMS, type Distances, type Norm, type NormName } from './lp.js';
import { LP_NORMS } from '../util/norms.js';
import { LOSSES, objective, objectiveSpec, type LossName } from './losses.js';
import { labelsToArray, UNTARGETED, type Goal, type Labels } from './targets.js';

export interface GradientAttackOptions {
  /** Radius of the threat model, in pixel units (the classifier's bounds). */
  eps: number;
  /** 'linf' (default), 'l2' or 'l1'. */
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
  /**
   * Expectation over Transformation: gradient and objective averaged over this many calls of
   * the model per step (for randomized models and defenses). Default 1.
   */
  eot?: number;
}

export interface AttackResult {
  /** The adversarial batch [N, H, W, C], inside the eps-ball around x and the bounds. Caller disposes. */
  adversarial: tf.Tensor4D;
  /** 1 where the goal is met on `adversarial`. */
  success: Uint8Array;
  /** Predicted classes on `adversarial`. */
  predictions: Int32Array;
  /** Per-sample distances between `adversarial` and x. */
  norms: Distances;
  /** Gradient steps per restart. */
  steps: number;
  restarts: number;
  /** Final value of the objective per sample. */
  loss: Float32Array;
  /**
   * Minimum-norm attacks (FAB): each sample's smallest adversarial distance found, in the
   * attack's norm (Infinity where none was found), whatever eps was.
   */
  minimumNorm?: Float32Array;
}

export type Attack<O extends Partial<GradientAttackOptions> = Partial<GradientAttackOptions>> =
  (model: Classifier, x: tf.Tensor4D, y: Labels, options: O & { eps: number }) => Promise<AttackResult>;

export interface Resolved {
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
  eot: number;
}

/** Checks the inputs of an attack; every message names the attack, the argument and the value. */
/** Every option name an attack of the registry takes (each attack's own are in its defaults). */
export const ATTACK_OPTION_NAMES: readonly string[] = ['eps', 'norm', 'steps', 'relStepSize', 'absStepSize', 'randomStart', 'restarts', 'loss', 'goal', 'seed', 'earlyStop', 'momentum', 'eot', 'rho', 'targets', 'alphaMax', 'eta', 'beta', 'queries', 'pInit', 'rescaleSchedule', 'candidates', 'overshoot', 'binarySteps', 'initialConst', 'confidence', 'learningRate', 'abortEarly', 'decisionRule', 'maxStepSize', 'minStepSize', 'gamma'];

export function validateAttack(fn: string, model: Classifier, x: tf.Tensor4D, y: Labels, o: GradientAttackOptions & { steps: number }, norms: readonly NormName[] = LP_NORMS): { labels: Int32Array; resolved: Resolved } {
  checkKnownOptions(fn, o, ATTACK_OPTION_NAMES);
  check(x instanceof tf.Tensor && x.rank === 4, fn, () => `x must be a rank-4 tensor [N, H, W, C], but got ${x instanceof tf.Tensor ? `rank ${x.rank}` : show(x)}.`);
  check(!x.isDisposed, fn, () => 'x is a disposed tensor; keep the images alive until the call returns.');
  const [, h, w, c] = x.shape;
  check(h === model.inputShape[0] && w === model.inputShape[1] && c === model.inputShape[2], fn,
    () => `x has images of shape [${h}, ${w}, ${c}] but the model takes [${model.inputShape.join(', ')}].`);
  const labels = labelsToArray(y, fn);
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
    seeds = Int32Array.from({ length: labels.length }, (_, i) => seedFor(seed, i));
  } else {
    check(seedOpt.length === labels.length, fn, () => `seed has ${seedOpt.length} per-sample seeds but x has ${labels.length} images.`);
    seeds = Int32Array.from(seedOpt, (v) => checkFiniteNumber(fn, 'seed[i]', v, { integer: true, min: 0 }) & 0x7fffffff);
  }
  const momentum = checkFiniteNumber(fn, 'momentum', o.momentum ?? 0, { min: 0 });
  const eot = checkFiniteNumber(fn, 'eot', o.eot ?? 1, { integer: true, min: 1 });
  const normName = o.norm ?? 'linf';
  check(typeof normName === 'string' && (norms as readonly string[]).includes(normName), fn, () => `norm must be one of ${norms.join(', ')}, but got ${show(normName)}${normName === 'l0' ? ' (L0 is a count of changed values; fmn takes it)' : ''}.`);
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
    resolved: { eps, norm: NORMS[normName as NormName], steps, stepSize, randomStart: o.randomStart ?? false, restarts, loss, targets, seeds, earlyStop: o.earlyStop ?? false, momentum, eot },
  };
}

/** 1 where the goal is met by logits z: untargeted, argmax ≠ y; targeted, argmax = target. */
export function goalMet(z: tf.Tensor2D, labels: tf.Tensor1D, isTargeted: boolean): tf.Tensor1D {
  return tf.tidy(() => {
    const pred = tf.argMax(z, 1);
    return (isTargeted ? tf.equal(pred, labels) : tf.notEqual(pred, labels)) as tf.Tensor1D;
  });
}

/** What a step rule sees at iterate x_i (all tensors owned by the loop). */
export interface StepInput {
  /** Iteration index, from 0. */
  i: number;
  /** The clean inputs (centre of the ball). */
  x: tf.Tensor4D;
  adv: tf.Tensor4D;
  /** Gradient of the summed objective at adv. */
  grad: tf.Tensor4D;
  /** Objective per sample at adv. */
  loss: tf.Tensor1D;
  logits: tf.Tensor2D;
}

export type RuleState = Record<string, tf.Tensor>;

/**
 * How the loop moves: `init` builds the tensors carried between steps from the start point;
 * `step` (run inside tf.tidy) returns the next iterate, the new state and optionally a
 * candidate for the tracker (FAB scores the point it reached before stepping back).
 */
export interface StepRule {
  init(x: tf.Tensor4D, start: tf.Tensor4D): RuleState;
  step(input: StepInput, state: RuleState): { next: tf.Tensor4D; state: RuleState; candidate?: tf.Tensor4D };
}

export type Keep = 'last' | 'strongest' | 'closest';

/** The hooks of one run of the loop over a batch. */
export interface LoopHooks {
  /** Per-sample objective to maximize, from the logits. */
  objective(logits: tf.Tensor2D): tf.Tensor1D;
  /** 1 where the goal is met, from the logits. */
  met(logits: tf.Tensor2D): tf.Tensor1D;
  rule: StepRule;
  /** The first iterate (inside the ball and bounds). */
  start(): tf.Tensor4D;
  steps: number;
  keep: Keep;
  /** Samples meeting the goal stop moving. */
  earlyStop?: boolean;
  /** Distance for keep = 'closest'. */
  norm: Norm;
  /** Gradient and objective averaged over this many model calls (EOT). Default 1. */
  eot?: number;
  /**
   * The objective as the native path knows it (models/native.ts), when it is one it computes
   * in-graph: the loop then takes logits and gradient from `model.native` where it answers.
   */
  spec?: ObjectiveSpec;
}

/** A run's result: the iterate kept per sample, whether it meets the goal, its score. */
export type RunOutcome = {
  adv: tf.Tensor4D;
  success: tf.Tensor1D;
  score: tf.Tensor1D;
};

/** Disposes the tensors of `old` that `next` does not carry over. */
function disposeReplaced(old: tf.Tensor[], next: tf.Tensor[]): void {
  const keep = new Set(next);
  for (const t of old) if (!keep.has(t)) t.dispose();
}

const asList = (o: Record<string, tf.Tensor | undefined> | undefined): tf.Tensor[] => (o ? Object.values(o).filter((t): t is tf.Tensor => t !== undefined) : []);

/** Per-sample choice: success first, then the higher score. */
function better(a: { success: tf.Tensor1D; score: tf.Tensor1D }, b: { success: tf.Tensor1D; score: tf.Tensor1D }): tf.Tensor1D {
  return tf.tidy(() => tf.logicalOr(tf.logicalAnd(a.success, tf.logicalNot(b.success)),
    tf.logicalAnd(tf.equal(a.success, b.success), tf.greater(a.score, b.score))) as tf.Tensor1D);
}

function merge(prev: RunOutcome, cand: RunOutcome): RunOutcome {
  return tf.tidy(() => {
    const take = better(cand, prev);
    return {
      adv: tf.where(tf.reshape(take, [-1, 1, 1, 1]), cand.adv, prev.adv) as tf.Tensor4D,
      success: tf.logicalOr(prev.success, cand.success) as tf.Tensor1D,
      score: tf.where(take, cand.score, prev.score) as tf.Tensor1D,
    };
  });
}

/** Lets the event loop run about every 100 ms of a long synchronous loop (workers, RPC, timers). */
export function yielder(): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < 100) return;
    // setImmediate under Node; a zero timeout in browsers, which have none.
    await new Promise<void>((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
    last = performance.now();
  };
}

/**
 * One run of the loop on a batch. The caller disposes the outcome. With keep = 'last' and
 * `scored` false, success and score are not computed (zeros): no extra forward pass.
 */
export async function descend(model: Classifier, x: tf.Tensor4D, h: LoopHooks, scored = true): Promise<RunOutcome> {
  const n = x.shape[0];
  const score = (cand: tf.Tensor4D, logits: tf.Tensor2D, loss: tf.Tensor1D): RunOutcome => tf.tidy(() => ({
    adv: tf.clone(cand),
    success: tf.cast(h.met(logits), 'bool') as tf.Tensor1D,
    score: h.keep === 'closest' ? (tf.neg(h.norm.distance(cand, x)) as tf.Tensor1D) : tf.clone(loss),
  }));
  const track = (best: RunOutcome | undefined, cand: RunOutcome): RunOutcome => {
    if (!best) return cand;
    const m = merge(best, cand);
    tf.dispose(asList(cand));
    return m;
  };
  let adv: tf.Tensor4D | undefined;
  let state: RuleState | undefined;
  let done = h.earlyStop ? (tf.zeros([n], 'bool') as tf.Tensor1D) : undefined;
  let best: RunOutcome | undefined;
  // Tensors kept out of an iteration's tidy until it ends (a throwing model must not leak them).
  const kept: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => { kept.push(tf.keep(t)); return t; };
  try {
    adv = h.start();
    state = h.rule.init(x, adv);
    const pause = yielder();
    for (let i = 0; i < h.steps; i++) {
      await pause();
      const cur: tf.Tensor4D = adv;
      const curState: RuleState = state;
      // The native path (onnxruntime): logits and gradient of the objective in one run.
      const draws = h.eot ?? 1;
      const nat = h.spec && model.native && draws === 1 ? await model.native.gradient(cur, h.spec) : undefined;
      if (nat) kept.push(nat.logits, nat.grad);
      const out: { next: tf.Tensor4D; state: RuleState; done?: tf.Tensor1D; best?: RunOutcome } = tf.tidy(() => {
        let logits: tf.Tensor2D | undefined = nat?.logits;
        let loss: tf.Tensor1D | undefined;
        // With EOT, the mean gradient and objective over draws, and the logits of the last draw.
        const grads: tf.Tensor4D[] = nat ? [tf.clone(nat.grad)] : [];
        const losses: tf.Tensor1D[] = nat ? [keep(h.objective(nat.logits))] : [];
        for (let d = 0; d < (nat ? 0 : draws); d++) {
          logits?.dispose();
          grads.push(tf.grad((a: tf.Tensor) => {
            const z = model.logits(a as tf.Tensor4D);
            logits = keep(z);
            const l = h.objective(z);
            losses.push(keep(l));
            return tf.sum(l);
          })(cur) as tf.Tensor4D);
        }
        const grad = draws === 1 ? grads[0]! : (tf.div(tf.addN(grads), draws) as tf.Tensor4D);
        loss = draws === 1 ? losses[0]! : (keep(tf.div(tf.addN(losses), draws)) as tf.Tensor1D);
        if (draws > 1) tf.dispose(losses);
        let tracked: RunOutcome | undefined = h.keep === 'last' ? undefined : track(best, score(cur, logits!, loss!));
        const stepped = h.rule.step({ i, x, adv: cur, grad, loss: loss!, logits: logits! }, curState);
        let next = stepped.next;
        if (stepped.candidate && h.keep !== 'last') {
          const zc = model.logits(stepped.candidate);
          tracked = track(tracked, score(stepped.candidate, zc, h.objective(zc)));
        }
        let doneNext: tf.Tensor1D | undefined;
        if (done) {
          // Samples meeting the goal at the current iterate stay where they are.
          doneNext = tf.logicalOr(done, h.met(logits!)) as tf.Tensor1D;
          next = tf.where(tf.reshape(doneNext, [n, 1, 1, 1]), cur, next) as tf.Tensor4D;
        }
        return { next, state: stepped.state, done: doneNext, best: tracked };
      });
      tf.dispose(kept.splice(0));
      disposeReplaced([cur, ...asList(curState), ...(done ? [done] : [])], [out.next, ...asList(out.state), ...(out.done ? [out.done] : [])]);
      if (best) tf.dispose(asList(best));
      adv = out.next;
      state = out.state;
      done = out.done;
      best = out.best;
    }
    const finalAdv: tf.Tensor4D = adv;
    disposeReplaced([...asList(state), ...(done ? [done] : [])], [finalAdv]);
    state = undefined;
    done = undefined;
    if (h.keep === 'last' && !scored) return { adv: finalAdv, success: tf.zeros([n], 'bool') as tf.Tensor1D, score: tf.zeros([n]) as tf.Tensor1D };
    const zFinal = await logitsAsync(model, finalAdv);
    const last = tf.tidy(() => score(finalAdv, zFinal, h.objective(zFinal)));
    zFinal.dispose();
    finalAdv.dispose();
    adv = undefined;
    const final = track(best, last);
    if (best) tf.dispose(asList(best));
    best = undefined;
    return final;
  } catch (err) {
    tf.dispose([...kept, ...(adv ? [adv] : []), ...(state ? asList(state) : []), ...(done ? [done] : []), ...(best ? asList(best) : [])]);
    throw err;
  }
}

/**
 * Runs `count` runs of the loop, each on the samples not yet broken by the runs before it,
 * and keeps each sample's best outcome (success first, then score). `run(k, idx)` runs the
 * k-th run on the samples `idx` (all of them when idx is undefined) and returns their outcome.
 */
export async function runOnRemaining(n: number, count: number, run: (k: number, idx: Int32Array | undefined) => Promise<RunOutcome>): Promise<RunOutcome> {
  let best = await run(0, undefined);
  try {
    return await remainingRuns(n, count, run, best, (b) => { best = b; });
  } catch (err) {
    tf.dispose(asList(best));
    throw err;
  }
}

async function remainingRuns(n: number, count: number, run: (k: number, idx: Int32Array | undefined) => Promise<RunOutcome>, first: RunOutcome, setBest: (b: RunOutcome) => void): Promise<RunOutcome> {
  let best = first;
  for (let k = 1; k < count; k++) {
    const ok = await best.success.data();
    const idx = Int32Array.from(Array.from({ length: n }, (_, i) => i).filter((i) => !ok[i]));
    if (idx.length === 0) break;
    const sub = await run(k, idx);
    // Scatter the subset's outcome back to batch positions (a sample outside idx keeps its own).
    const pos = new Int32Array(n);
    const inSub = new Uint8Array(n);
    idx.forEach((i, j) => { pos[i] = j; inSub[i] = 1; });
    const next = tf.tidy(() => {
      const p = tf.tensor1d(pos, 'int32');
      const mask = tf.cast(tf.tensor1d(inSub, 'int32'), 'bool') as tf.Tensor1D;
      const full: RunOutcome = {
        adv: tf.gather(sub.adv, p) as tf.Tensor4D,
        success: tf.logicalAnd(tf.gather(sub.success, p), mask) as tf.Tensor1D,
        score: tf.where(mask, tf.gather(sub.score, p), tf.fill([n], -Infinity)) as tf.Tensor1D,
      };
      return merge(best, full);
    });
    tf.dispose([...asList(best), ...asList(sub)]);
    best = next;
    setBest(best);
  }
  return best;
}

/** Gathers the rows `idx` of a per-sample array (all rows when idx is undefined). */
export function rows<T extends Int32Array | Float32Array>(a: T, idx: Int32Array | undefined): T {
  return (idx ? a.constructor === Int32Array ? Int32Array.from(idx, (i) => a[i]!) : Float32Array.from(idx, (i) => a[i]!) : a) as T;
}

/** Gathers the rows `idx` of a batch tensor (a clone of all rows when idx is undefined). */
export function gatherRows<T extends tf.Tensor>(t: T, idx: Int32Array | undefined): T {
  return tf.tidy(() => (idx ? tf.gather(t, tf.tensor1d(idx, 'int32')) : tf.clone(t))) as T;
}

/** The fixed step of FGSM, BIM and PGD: x + α·normalize(∇), projected. */
export function fixedStep(norm: Norm, eps: number, stepSize: number, bounds: Bounds): StepRule {
  return {
    init: () => ({}),
    step: ({ x, adv, grad }) => ({ next: norm.project(tf.add(adv, tf.mul(norm.normalize(grad, adv, bounds), stepSize)) as tf.Tensor4D, x, eps, bounds), state: {} }),
  };
}

/** Hook set of a validated attack: its objective, goal, rule and start, for run k on rows idx. */
export function attackHooks(model: Classifier, x: tf.Tensor4D, labels: Int32Array, r: Resolved, k: number, idx: Int32Array | undefined, rule: StepRule, keep: Keep, objectiveOf?: { fn: (z: tf.Tensor2D, yT: tf.Tensor1D, goalT: tf.Tensor1D) => tf.Tensor1D; spec?: ObjectiveSpec }): LoopHooks & { dispose(): void } {
  const yRows = rows(labels, idx);
  const yT = tf.tensor1d(yRows, 'int32');
  const isTargeted = r.targets !== undefined;
  const goalRows = r.targets ? rows(r.targets, idx) : yRows;
  const goalT = r.targets ? tf.tensor1d(goalRows, 'int32') : yT;
  const spec: ObjectiveSpec | undefined = objectiveOf ? objectiveOf.spec
    : objectiveSpec(r.loss, goalRows, isTargeted, yRows);
  const seeds = rows(r.seeds, idx);
  const runSeeds = k === 0 ? seeds : seeds.map((s) => seedFor(s, k));
  return {
    objective: (z) => (objectiveOf ? objectiveOf.fn(z, yT, goalT) : objective(r.loss, z, goalT, isTargeted, yT)),
    ...(spec ? { spec } : {}),
    met: (z) => goalMet(z, goalT, isTargeted),
    rule,
    start: () => (r.randomStart
      ? tf.tidy(() => r.norm.project(tf.add(x, r.norm.randomStart(x.shape, r.eps, runSeeds)) as tf.Tensor4D, x, r.eps, model.bounds))
      : tf.clone(x)),
    steps: r.steps,
    keep,
    earlyStop: r.earlyStop,
    norm: r.norm,
    eot: r.eot,
    dispose: () => tf.dispose(goalT === yT ? [yT] : [yT, goalT]),
  };
}

/** What an attack built on the loop adds to the validated options. */
export interface LoopAttack {
  /** The step rule for a batch of `n` samples. */
  rule?: (r: Resolved, bounds: Bounds, n: number) => StepRule;
  keep?: Keep;
  /** Runs over the batch (default: the restarts). */
  runs?: number;
}

/** Runs the loop with validated options and re-checks its result (see finalize). */
export async function runGradientAttack(fn: string, model: Classifier, x: tf.Tensor4D, y: Labels, options: GradientAttackOptions & { steps: number }, how: LoopAttack = {}): Promise<AttackResult> {
  const { labels, resolved: r } = validateAttack(fn, model, x, y, options);
  return finalizeResult(model, x, await search(model, x, labels, r, how), labels, r);
}

/** The attack's result for a candidate batch, re-checked against the validated options. */
export async function finalizeResult(model: Classifier, x: tf.Tensor4D, adversarial: tf.Tensor4D, labels: Int32Array, r: Resolved): Promise<AttackResult> {
  const yT = tf.tensor1d(labels, 'int32');
  const goalT = r.targets ? tf.tensor1d(r.targets, 'int32') : yT;
  try {
    const result = await finalize(model, x, adversarial, yT, goalT, r.targets !== undefined, r.loss);
    return { ...result, steps: r.steps, restarts: r.restarts };
  } catch (err) {
    adversarial.dispose();
    throw err;
  } finally {
    tf.dispose(goalT === yT ? [yT] : [yT, goalT]);
  }
}

/**
 * The adversarial batch alone, without the re-check of predictions and norms: for training
 * loops, which need only the inputs. Same options, same batch as runGradientAttack.
 */
export function gradientAttackExamples(fn: string, model: Classifier, x: tf.Tensor4D, y: Labels, options: GradientAttackOptions & { steps: number }): Promise<tf.Tensor4D> {
  const { labels, resolved } = validateAttack(fn, model, x, y, options);
  return search(model, x, labels, resolved, {});
}

/** Every restart on the samples still not broken, each sample keeping its strongest result. */
async function search(model: Classifier, x: tf.Tensor4D, labels: Int32Array, r: Resolved, how: LoopAttack): Promise<tf.Tensor4D> {
  const n = x.shape[0];
  const keep = how.keep ?? 'last';
  const out = await runOnRemaining(n, how.runs ?? r.restarts, async (k, idx) => {
    const xs = gatherRows(x, idx);
    const rule = how.rule ? how.rule(r, model.bounds, xs.shape[0]) : fixedStep(r.norm, r.eps, r.stepSize, model.bounds);
    const hooks = attackHooks(model, xs, labels, r, k, idx, rule, keep);
    try {
      return await descend(model, xs, hooks, (how.runs ?? r.restarts) > 1);
    } finally {
      hooks.dispose();
      xs.dispose();
    }
  });
  tf.dispose([out.success, out.score]);
  return out.adv;
}

/** Re-checks a candidate adversarial batch: predictions, success, loss and norms from scratch. */
async function finalize(model: Classifier, x: tf.Tensor4D, adversarial: tf.Tensor4D, yT: tf.Tensor1D, goalT: tf.Tensor1D, isTargeted: boolean, loss: LossName): Promise<Omit<AttackResult, 'steps' | 'restarts'>> {
  const zAdv = await logitsAsync(model, adversarial);
  const t = tf.tidy(() => {
    const z = zAdv;
    return {
      pred: tf.argMax(z, 1),
      success: goalMet(z, goalT, isTargeted).toInt(),
      loss: objective(loss, z, goalT, isTargeted, yT),
    };
  });
  zAdv.dispose();
  const [pred, success, lossV] = await Promise.all([t.pred.data(), t.success.data(), t.loss.data()]);
  tf.dispose([t.pred, t.success, t.loss]);
  return {
    adversarial,
    predictions: Int32Array.from(pred),
    success: Uint8Array.from(success),
    loss: Float32Array.from(lossV),
    norms: await measureDistances(adversarial, x),
  };
}
