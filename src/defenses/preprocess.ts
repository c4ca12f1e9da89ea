/**
 * Input-preprocessing defenses with honest gradients.
 *
 * A Preprocessor is `{ name, apply(x), gradient, randomized }`. `defend(model, [...])` returns a
 * Classifier whose logits are model.logits(pₙ(…p₁(x))), so every attack works on it unchanged,
 * and whose gradients are
 * - exact where the preprocessing is differentiable (Gaussian noise);
 * - BPDA where it is not (Athalye, Carlini, Wagner 2018, "Obfuscated Gradients Give a False Sense
 *   of Security", arXiv:1802.00420): the forward pass uses the preprocessing, the backward pass
 *   the identity (or a custom differentiable surrogate);
 * - EOT where it is randomized: logits are averaged over `eot` draws, so the gradient is the mean
 *   gradient over the draws (Athalye et al. 2018, arXiv:1707.07397).
 * The choice is automatic, can be overridden per preprocessor, and is named in `describe()` so
 * reports can say how the defense was attacked.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, show } from '../util/errors.js';

export type GradientMode = 'exact' | 'bpda' | ((x: tf.Tensor4D) => tf.Tensor4D);

export interface Preprocessor {
  readonly name: string;
  /** The forward transformation; images stay in [0, 1]. */
  apply(x: tf.Tensor4D): tf.Tensor4D;
  /** 'exact' (differentiate apply), 'bpda' (identity backward), or a differentiable surrogate. */
  readonly gradient: GradientMode;
  /** True when apply draws random numbers (then EOT is used). */
  readonly randomized: boolean;
}

/** Bit-depth reduction to `bits` bits per channel (Xu, Evans, Qi 2018). BPDA by default. */
export function bitDepth(bits: number): Preprocessor {
  checkFiniteNumber('bitDepth', 'bits', bits, { integer: true, min: 1, max: 16 });
  const levels = 2 ** bits - 1;
  return { name: `bit-depth(${bits})`, gradient: 'bpda', randomized: false, apply: (x) => tf.tidy(() => tf.div(tf.round(tf.mul(x, levels)), levels) as tf.Tensor4D) };
}

/** Median smoothing over a k x k window per channel, edges padded by reflection. BPDA by default. */
export function medianSmoothing(k: number): Preprocessor {
  checkFiniteNumber('medianSmoothing', 'k', k, { integer: true, min: 1, max: 15 });
  check(k % 2 === 1, 'medianSmoothing', () => `k must be odd (the window needs a centre pixel), but got ${k}; use ${k + 1} or ${k - 1}.`);
  const r = (k - 1) / 2;
  return {
    name: `median(${k})`, gradient: 'bpda', randomized: false,
    apply: (x) => tf.tidy(() => {
      const [, h, w] = x.shape;
      const padded = tf.mirrorPad(x, [[0, 0], [r, r], [r, r], [0, 0]], 'reflect');
      const windows: tf.Tensor4D[] = [];
      for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) windows.push(tf.slice(padded, [0, dy, dx, 0], [-1, h, w, -1]));
      // [N, H, W, C, k*k]; the median is the middle of the sorted window.
      const stacked = tf.stack(windows, 4);
      const top = tf.topk(stacked, (k * k + 1) / 2).values;
      return tf.squeeze(tf.slice(top, [0, 0, 0, 0, (k * k - 1) / 2], [-1, -1, -1, -1, 1]), [4]) as tf.Tensor4D;
    }),
  };
}

let noiseCalls = 0;

/**
 * Additive Gaussian noise of standard deviation sigma, clipped to [0, 1]: randomized and
 * differentiable (exact gradient per draw; EOT over draws). Draws are seeded from `seed` and
 * a call counter, so a run is reproducible.
 */
export function gaussianNoise(sigma: number, seed = 0): Preprocessor {
  checkFiniteNumber('gaussianNoise', 'sigma', sigma, { min: 0, minExclusive: true });
  return {
    name: `gaussian-noise(${sigma})`, gradient: 'exact', randomized: true,
    apply: (x) => tf.tidy(() => tf.clipByValue(tf.add(x, tf.randomNormal(x.shape, 0, sigma, 'float32', (seed * 7919 + ++noiseCalls) % 2147483646 + 1)), 0, 1) as tf.Tensor4D),
  };
}

/** A preprocessor with another gradient rule (e.g. exact BPDA off, or a surrogate). */
export function withGradient(p: Preprocessor, gradient: GradientMode): Preprocessor {
  return { ...p, gradient };
}

function withBackward(p: Preprocessor): (x: tf.Tensor4D) => tf.Tensor4D {
  if (p.gradient === 'exact') return (x) => p.apply(x);
  const surrogate = p.gradient === 'bpda' ? undefined : p.gradient;
  const f = tf.customGrad(((x: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
    save([x]);
    return {
      value: p.apply(x as tf.Tensor4D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        if (!surrogate) return [dy];
        // The surrogate's vector-Jacobian product at the saved input.
        return [tf.grad((z: tf.Tensor) => tf.sum(tf.mul(surrogate(z as tf.Tensor4D), dy)))(saved[0]!)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (x) => f(x) as tf.Tensor4D;
}

export interface DefendOptions {
  /** Draws averaged per call when a preprocessor is randomized (EOT). Default 8. */
  eot?: number;
}

export interface DefendedClassifier extends Classifier {
  readonly preprocessors: readonly Preprocessor[];
  /** How gradients pass each step, for reports: e.g. "median(3): BPDA (identity)". */
  describe(): string;
}

/** A Classifier that preprocesses its inputs; attacks see BPDA/EOT automatically. */
export function defend(model: Classifier, preprocessors: Preprocessor[], options: DefendOptions = {}): DefendedClassifier {
  check(Array.isArray(preprocessors) && preprocessors.length > 0, 'defend', () => `preprocessors must be a non-empty list, but got ${show(preprocessors)}.`);
  const eot = checkFiniteNumber('defend', 'eot', options.eot ?? 8, { integer: true, min: 1 });
  const chain = preprocessors.map(withBackward);
  const randomized = preprocessors.some((p) => p.randomized) || model.randomized;
  const once = (x: tf.Tensor4D) => model.logits(chain.reduce((v, f) => f(v), x));
  const rule = (p: Preprocessor) => (p.gradient === 'exact' ? 'exact gradient' : p.gradient === 'bpda' ? 'BPDA (identity)' : 'BPDA (surrogate)');
  return {
    logits: (x) => tf.tidy(() => {
      if (!randomized || eot === 1) return once(x);
      let sum = once(x);
      for (let i = 1; i < eot; i++) sum = tf.add(sum, once(x));
      return tf.div(sum, eot) as tf.Tensor2D;
    }),
    bounds: model.bounds,
    numClasses: model.numClasses,
    inputShape: model.inputShape,
    randomized,
    warnings: model.warnings,
    preprocessors,
    describe: () => `${preprocessors.map((p) => `${p.name}: ${rule(p)}`).join('; ')}${randomized ? `; EOT over ${eot} draws` : ''}`,
  };
}
