/**
 * What the minimum-norm attacks share (DeepFool, Carlini–Wagner, EAD, FMN; FAB-T too): the
 * gradient of a per-sample objective through the native path where it answers, the
 * Carlini–Wagner margin they minimize, the per-sample binary search over the trade-off
 * constant c, and the result: the smallest adversarial point found, re-checked, its
 * distance as `minimumNorm`, and the adversarial batch kept inside the eps-ball.
 */
import * as tf from '@tensorflow/tfjs';
import { logitsAsync, type Classifier } from '../models/classifier.js';
import type { ObjectiveSpec } from '../models/native.js';
import { finalizeResult, goalMet, type AttackResult, type Resolved } from './gradient_descent.js';
import { objective, objectiveSpec } from './losses.js';

/**
 * Logits at x and ∂(Σ f)/∂x for a per-sample objective f of the logits: one native run where
 * the classifier has one and `spec` names f, else tfjs differentiates `logits`. Caller disposes.
 */
export async function objectiveGradient(model: Classifier, x: tf.Tensor4D, f: (z: tf.Tensor2D) => tf.Tensor1D, spec?: ObjectiveSpec): Promise<{ logits: tf.Tensor2D; grad: tf.Tensor4D }> {
  const nat = spec ? await model.native?.gradient(x, spec) : undefined;
  if (nat) return nat;
  let logits: tf.Tensor2D | undefined;
  const grad = tf.grad((a: tf.Tensor) => {
    const z = model.logits(a as tf.Tensor4D);
    logits = tf.keep(z);
    return tf.sum(f(z));
  })(x) as tf.Tensor4D;
  return { logits: logits!, grad };
}

/** The goal of a minimum-norm attack's rows: the true labels, or the targets when targeted. */
export interface GoalRows {
  labels: Int32Array;
  /** The class to leave (untargeted: the labels) or to reach (targeted: the targets). */
  goal: Int32Array;
  targeted: boolean;
}

export function goalRows(labels: Int32Array, r: Resolved): GoalRows {
  return { labels, goal: r.targets ?? labels, targeted: r.targets !== undefined };
}

/**
 * The Carlini–Wagner margin g(z), positive exactly when the goal is met with room to spare:
 * untargeted max_{j≠y} z_j − z_y, targeted z_t − max_{j≠t} z_j; with ∂(Σg)/∂x and the logits.
 * Caller disposes the three tensors.
 */
export async function marginGradient(model: Classifier, x: tf.Tensor4D, g: GoalRows): Promise<{ logits: tf.Tensor2D; grad: tf.Tensor4D; margin: tf.Tensor1D }> {
  const goalT = tf.tensor1d(g.goal, 'int32');
  try {
    const f = (z: tf.Tensor2D) => objective('margin', z, goalT, g.targeted);
    const { logits, grad } = await objectiveGradient(model, x, f, objectiveSpec('margin', g.goal, g.targeted));
    return { logits, grad, margin: tf.tidy(() => f(logits)) };
  } finally {
    goalT.dispose();
  }
}

/**
 * Carlini and Wagner's per-sample search over the constant c that weighs the misclassification
 * term against the distance: after a run at c, a sample that succeeded halves towards the
 * largest c known to fail, one that failed moves to the midpoint with the smallest c known to
 * succeed, or grows tenfold while none is known.
 */
export class ConstantSearch {
  readonly c: Float32Array;
  private readonly lower: Float32Array;
  private readonly upper: Float32Array;

  constructor(n: number, initial: number) {
    this.c = new Float32Array(n).fill(initial);
    this.lower = new Float32Array(n);
    this.upper = new Float32Array(n).fill(Infinity);
  }

  /** Moves each sample's c after a run in which `succeeded[i]` says whether it met the goal. */
  update(succeeded: ArrayLike<number | boolean>): void {
    for (let i = 0; i < this.c.length; i++) {
      if (succeeded[i]) {
        this.upper[i] = Math.min(this.upper[i]!, this.c[i]!);
        this.c[i] = (this.lower[i]! + this.upper[i]!) / 2;
      } else {
        this.lower[i] = Math.max(this.lower[i]!, this.c[i]!);
        this.c[i] = Number.isFinite(this.upper[i]!) ? (this.lower[i]! + this.upper[i]!) / 2 : this.c[i]! * 10;
      }
    }
  }

  /** The constants as a [N, 1, 1, 1] tensor, for broadcasting against images. */
  tensor(): tf.Tensor4D {
    return tf.tensor4d(this.c, [this.c.length, 1, 1, 1]);
  }
}

/**
 * The result of a minimum-norm attack from the closest point it found per sample (`point`,
 * owned and disposed here; the clean input where it found none): the goal re-checked on the
 * point, `minimumNorm` its distance in the attack's norm where met (Infinity elsewhere), and
 * `adversarial` the point projected into the eps-ball, re-checked like every attack's.
 */
export async function minimumNormResult(model: Classifier, x: tf.Tensor4D, point: tf.Tensor4D, labels: Int32Array, r: Resolved): Promise<AttackResult> {
  let adversarial: tf.Tensor4D | undefined;
  let dist: Float32Array;
  let met: Uint8Array;
  try {
    const z = await logitsAsync(model, point);
    const t = tf.tidy(() => {
      const goalT = tf.tensor1d(r.targets ?? labels, 'int32');
      return { met: tf.cast(goalMet(z, goalT, r.targets !== undefined), 'int32'), dist: r.norm.distance(point, x) };
    });
    z.dispose();
    [met, dist] = await Promise.all([t.met.data().then((v) => Uint8Array.from(v)), t.dist.data().then((v) => Float32Array.from(v))]);
    tf.dispose([t.met, t.dist]);
    adversarial = r.norm.project(point, x, r.eps, model.bounds);
  } finally {
    point.dispose();
  }
  const minimumNorm = Float32Array.from(met, (m, i) => (m ? dist[i]! : Infinity));
  return { ...(await finalizeResult(model, x, adversarial, labels, r)), minimumNorm };
}

/** Per-sample choice between two batches: rows where `take` is 1 from `a`, the others from `b`. */
export function pickRows(take: tf.Tensor1D, a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.where(tf.reshape(tf.cast(take, 'bool'), [-1, 1, 1, 1]), a, b) as tf.Tensor4D);
}
