/**
 * Norm geometry for Lp threat models: all the Lp math of advkit lives here, so the attack
 * loop never asks which norm it runs under.
 *
 * Each norm supplies
 * - `randomStart(shape, eps, seeds)`: a perturbation drawn uniformly from the eps-ball, one
 *   seed per sample (so a sample's draw does not depend on which batch it is in);
 * - `normalize(g, xAdv, bounds)`: the steepest-ascent direction of unit norm (sign for L∞;
 *   for L2, g/‖g‖₂ after dropping the components that push a pixel already at a bound further
 *   out, which clipping would undo and which would otherwise eat the step's length);
 * - `project(xAdv, x, eps, bounds)`: the closest point of the eps-ball around x, inside bounds;
 * - `distance(a, b)`: per-sample distances [N].
 * Shapes: images [N, H, W, C]; per-sample values [N].
 */
import * as tf from '@tensorflow/tfjs';
import type { Bounds } from '../models/classifier.js';

export interface Norm {
  readonly name: 'linf' | 'l2';
  randomStart(shape: readonly [number, number, number, number], eps: number, seeds: ArrayLike<number>): tf.Tensor4D;
  normalize(g: tf.Tensor4D, xAdv: tf.Tensor4D, bounds: Bounds): tf.Tensor4D;
  project(xAdv: tf.Tensor4D, x: tf.Tensor4D, eps: number, bounds: Bounds): tf.Tensor4D;
  distance(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor1D;
}

const TINY = 1e-12;

function perSample(t: tf.Tensor4D): tf.Tensor2D {
  return tf.reshape(t, [t.shape[0], -1]);
}

/** Per-sample L2 norms [N, 1, 1, 1], for broadcasting against images. */
function l2Norms(t: tf.Tensor4D): tf.Tensor4D {
  return tf.reshape(tf.sqrt(tf.sum(tf.square(perSample(t)), 1)), [t.shape[0], 1, 1, 1]);
}

/** Stacks one draw per sample, each from its own seed (tfjs treats seed 0 as "no seed"). */
function perSampleDraw(shape: readonly [number, number, number, number], seeds: ArrayLike<number>, draw: (s: [number, number, number, number], seed: number) => tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const one: [number, number, number, number] = [1, shape[1], shape[2], shape[3]];
    const parts = Array.from({ length: shape[0] }, (_, i) => draw(one, (Math.abs(Math.trunc(seeds[i] ?? 0)) % 2147483646) + 1));
    return tf.concat(parts, 0) as tf.Tensor4D;
  });
}

export const linf: Norm = {
  name: 'linf',
  randomStart: (shape, eps, seeds) => perSampleDraw(shape, seeds, (s, seed) => tf.randomUniform(s, -eps, eps, 'float32', seed)),
  normalize: (g) => tf.sign(g) as tf.Tensor4D,
  project: (xAdv, x, eps, [lo, hi]) => tf.tidy(() => tf.clipByValue(tf.minimum(tf.maximum(xAdv, tf.sub(x, eps)), tf.add(x, eps)), lo, hi) as tf.Tensor4D),
  distance: (a, b) => tf.max(tf.abs(perSample(tf.sub(a, b))), 1) as tf.Tensor1D,
};

export const l2: Norm = {
  name: 'l2',
  // Uniform in the ball: a uniform direction (normalized Gaussian) at radius eps * u^(1/d).
  randomStart: (shape, eps, seeds) => perSampleDraw(shape, seeds, (s, seed) => {
    const d = s[1] * s[2] * s[3];
    const dir = tf.randomNormal(s, 0, 1, 'float32', seed) as tf.Tensor4D;
    const unit = tf.div(dir, tf.add(l2Norms(dir), TINY));
    const u = tf.randomUniform([1, 1, 1, 1], 0, 1, 'float32', seed + 1);
    return tf.mul(unit, tf.mul(tf.pow(u, 1 / d), eps));
  }),
  normalize: (g, xAdv, [lo, hi]) => tf.tidy(() => {
    const blocked = tf.logicalOr(tf.logicalAnd(tf.lessEqual(xAdv, lo), tf.less(g, 0)), tf.logicalAnd(tf.greaterEqual(xAdv, hi), tf.greater(g, 0)));
    const free = tf.where(blocked, tf.zerosLike(g), g) as tf.Tensor4D;
    return tf.div(free, tf.add(l2Norms(free), TINY));
  }),
  project: (xAdv, x, eps, [lo, hi]) => tf.tidy(() => {
    const delta = tf.sub(xAdv, x) as tf.Tensor4D;
    const scale = tf.minimum(1, tf.div(eps, tf.add(l2Norms(delta), TINY)));
    return tf.clipByValue(tf.add(x, tf.mul(delta, scale)), lo, hi) as tf.Tensor4D;
  }),
  distance: (a, b) => tf.tidy(() => tf.sqrt(tf.sum(tf.square(perSample(tf.sub(a, b))), 1)) as tf.Tensor1D),
};

export const NORMS = { linf, l2 } as const;
export type NormName = keyof typeof NORMS;
