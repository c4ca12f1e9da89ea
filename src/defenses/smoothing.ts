/**
 * Randomized smoothing (Cohen, Rosenfeld, Kolter 2019, "Certified Adversarial Robustness via
 * Randomized Smoothing", arXiv:1902.02918).
 *
 * The smoothed classifier g(x) = argmax_c P(f(x + ε) = c), ε ~ N(0, σ²I). `predict` returns g's
 * class or abstains (a two-sided binomial test at level alpha); `certify` returns the class and a
 * certified L2 radius R = σ·Φ⁻¹(p̲A), where p̲A is the one-sided (1 − alpha) Clopper–Pearson
 * lower bound on the top class's probability: with probability >= 1 − alpha over the sampling,
 * g is constant on the L2 ball of radius R around x. Noise is not clipped (as in the paper).
 * Every draw is seeded.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, InvalidArgumentError } from '../util/errors.js';
import { deriveSeed } from '../util/random.js';

export const ABSTAIN = -1;

/** ln Γ(x) (Lanczos). */
function lnGamma(x: number): number {
  const c = [76.18009172947146, -86.50532032941677, 24.01409824083091, -1.231739572450155, 0.1208650973866179e-2, -0.5395239384953e-5];
  let y = x;
  const t = x + 5.5 - (x + 0.5) * Math.log(x + 5.5);
  let s = 1.000000000190015;
  for (const ci of c) s += ci / ++y;
  return -t + Math.log((2.5066282746310005 * s) / x);
}

/** Continued fraction of the regularized incomplete beta (Numerical Recipes' betacf, Lentz). */
function betacf(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d; if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c; if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d; h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d; if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c; if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betacf(a, b, x)) / a : 1 - (front * betacf(b, a, 1 - x)) / b;
}

/** The q-quantile of Beta(a, b), by bisection (to 1e-12). */
export function betaQuantile(q: number, a: number, b: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 200 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (incompleteBeta(mid, a, b) < q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** One-sided (1 − alpha) Clopper–Pearson lower bound on p from k successes in n trials. */
export function clopperPearsonLower(k: number, n: number, alpha: number): number {
  return k === 0 ? 0 : betaQuantile(alpha, k, n - k + 1);
}

/** Two-sided binomial test p-value for k successes in n trials with p = 0.5. */
export function binomialTestHalf(k: number, n: number): number {
  const m = Math.min(k, n - k);
  // P(X <= m) for X ~ Bin(n, 1/2) is I_{1/2}(n - m, m + 1).
  const tail = incompleteBeta(0.5, n - m, m + 1);
  return Math.min(1, 2 * tail);
}

/** Φ⁻¹, the standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p <= 0 ? -Infinity : Infinity;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  let x: number;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - pl) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  return x;
}

export interface SmoothingOptions {
  sigma: number;
  /** Noise samples per batch of the classifier. Default 500. */
  batchSize?: number;
  seed?: number;
}

/** Counts f's predictions on n noisy copies of one image [1, H, W, C]. */
export async function sampleCounts(model: Classifier, x: tf.Tensor4D, n: number, o: SmoothingOptions, stream = 0): Promise<Int32Array> {
  const counts = new Int32Array(model.numClasses);
  const batch = o.batchSize ?? 500;
  for (let done = 0, i = 0; done < n; done += batch, i++) {
    const m = Math.min(batch, n - done);
    const pred = tf.tidy(() => {
      const noise = tf.randomNormal([m, ...x.shape.slice(1)] as [number, number, number, number], 0, o.sigma, 'float32', (deriveSeed(o.seed ?? 0, stream, i) % 2147483646) + 1);
      return tf.argMax(model.logits(tf.add(tf.tile(x, [m, 1, 1, 1]), noise) as tf.Tensor4D), 1);
    });
    for (const c of await pred.data()) counts[c]!++;
    pred.dispose();
  }
  return counts;
}

function checkSmoothing(fn: string, x: tf.Tensor4D, o: SmoothingOptions, alpha: number): void {
  check(x.rank === 4 && x.shape[0] === 1, fn, () => `x must be one image [1, H, W, C], but got shape [${x.shape.join(', ')}].`);
  checkFiniteNumber(fn, 'sigma', o.sigma, { min: 0, minExclusive: true });
  checkFiniteNumber(fn, 'alpha', alpha, { min: 0, minExclusive: true, max: 0.5 });
}

/** The smoothed prediction, or ABSTAIN when the top two classes are not separated at level alpha. */
export async function smoothedPredict(model: Classifier, x: tf.Tensor4D, options: SmoothingOptions & { n?: number; alpha?: number }): Promise<number> {
  const alpha = options.alpha ?? 0.001;
  checkSmoothing('smoothedPredict', x, options, alpha);
  const n = checkFiniteNumber('smoothedPredict', 'n', options.n ?? 1000, { integer: true, min: 1 });
  const counts = await sampleCounts(model, x, n, options, 1);
  const order = Array.from(counts.keys()).sort((a, b) => counts[b]! - counts[a]!);
  const [top, second] = [counts[order[0]!]!, counts[order[1]!]!];
  return binomialTestHalf(top, top + second) <= alpha ? order[0]! : ABSTAIN;
}

export interface Certificate {
  /** The smoothed class, or ABSTAIN. */
  prediction: number;
  /** Certified L2 radius (0 when abstaining). */
  radius: number;
  /** The Clopper–Pearson lower bound on the top class's probability. */
  pALower: number;
}

/**
 * CERTIFY of Cohen et al.: guess the top class from n0 samples, bound its probability from n
 * fresh samples; abstain unless the bound exceeds 1/2. The smallest n that can certify at level
 * alpha is checked up front.
 */
export async function certify(model: Classifier, x: tf.Tensor4D, options: SmoothingOptions & { n0?: number; n?: number; alpha?: number }): Promise<Certificate> {
  const alpha = options.alpha ?? 0.001;
  checkSmoothing('certify', x, options, alpha);
  const n0 = checkFiniteNumber('certify', 'n0', options.n0 ?? 100, { integer: true, min: 1 });
  const n = checkFiniteNumber('certify', 'n', options.n ?? 10_000, { integer: true, min: 1 });
  // Even n successes out of n give a lower bound of alpha^(1/n); it must exceed 1/2.
  if (Math.pow(alpha, 1 / n) <= 0.5) {
    throw new InvalidArgumentError(`Error in certify: n = ${n} samples can never certify at alpha = ${alpha} (the best lower bound, alpha^(1/n) = ${Math.pow(alpha, 1 / n).toFixed(4)}, is not above 1/2); use n >= ${Math.ceil(Math.log(alpha) / Math.log(0.5)) + 1}.`);
  }
  const guess = await sampleCounts(model, x, n0, options, 2);
  const cA = guess.indexOf(Math.max(...guess));
  const counts = await sampleCounts(model, x, n, options, 3);
  const pALower = clopperPearsonLower(counts[cA]!, n, alpha);
  return pALower < 0.5 ? { prediction: ABSTAIN, radius: 0, pALower } : { prediction: cA, radius: options.sigma * normalQuantile(pALower), pALower };
}
