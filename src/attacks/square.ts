/**
 * Square attack, L∞ and L2 (Andriushchenko, Croce, Flammarion, Hein 2020, "Square Attack: a
 * query-efficient black-box adversarial attack via random search", arXiv:1912.00986).
 *
 * Threat model: black-box (scores only: it calls `model.logits`, never a gradient), L∞ or L2
 * ball of radius eps, untargeted. Random search on the margin z_y − max_{j≠y} z_j: at each
 * iteration, for every sample not yet fooled, a proposal changes the perturbation inside a
 * random square window, and it is kept when the margin decreases. The window shrinks on the
 * paper's schedule. It is the gradient-free attack the evaluator runs to catch masking.
 *
 * - L∞: starts from vertical stripes of ±eps; a proposal sets the window to ±eps per channel.
 * - L2: starts from a grid of tiles, each holding a centred bump (positive above, negative
 *   below its middle row) with a random sign per channel, scaled to norm eps; a proposal
 *   moves the perturbation's mass from a second random window (emptied) into the first,
 *   where a new bump is added to what was there, keeping the total norm at eps.
 *
 * Options (defaults in SQUARE_DEFAULTS): eps (required), norm 'linf', queries 1000
 * (iterations), pInit 0.3 (initial fraction of pixels in the window), rescaleSchedule true,
 * seed 0 (number, or one seed per sample).
 * Shapes: x [N, H, W, C] in the model's bounds; y [N] integer labels.
 *
 * @example
 * const r = await square(model, x, y, { eps: 0.3, queries: 500 });
 */
import * as tf from '@tensorflow/tfjs';
import { logitsAsync, type Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, checkKnownOptions, defined } from '../util/errors.js';
import { deriveSeed, Rng } from '../util/random.js';
import { ATTACK_OPTION_NAMES, validateAttack, yielder, type AttackResult } from './gradient_descent.js';
import { measureDistances, type NormName } from './lp.js';
import type { Labels } from './targets.js';

export interface SquareOptions {
  eps: number;
  /** 'linf' (default) or 'l2'. */
  norm?: NormName;
  queries?: number;
  pInit?: number;
  seed?: number | ArrayLike<number>;
  /**
   * Stretch the paper's window schedule (made for 10,000 queries) over the budget (default
   * true); false keeps the paper's iteration counts, as AutoAttack does.
   */
  rescaleSchedule?: boolean;
}

export const SQUARE_DEFAULTS = Object.freeze({ norm: 'linf' as const, queries: 1000, pInit: 0.3, seed: 0, rescaleSchedule: true });

/** The paper's schedule for the fraction of pixels changed, rescaled to the query budget. */
function pSelection(pInit: number, it: number, queries: number, rescale: boolean): number {
  const i = rescale ? Math.floor((it / queries) * 10000) : it;
  const cuts = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
  let p = pInit;
  for (const c of cuts) if (i > c) p /= 2;
  return p;
}

async function margins(model: Classifier, xs: Float32Array, shape: [number, number, number, number], labels: Int32Array): Promise<{ margin: Float32Array; pred: Int32Array }> {
  const xt = tf.tensor4d(xs, shape);
  let zt: tf.Tensor2D;
  try {
    zt = await logitsAsync(model, xt);
  } finally {
    xt.dispose();
  }
  const out = tf.tidy(() => {
    const z = zt;
    const oh = tf.oneHot(tf.tensor1d(labels, 'int32'), z.shape[1]).toFloat();
    const zy = tf.sum(tf.mul(z, oh), 1);
    const other = tf.max(tf.sub(z, tf.mul(oh, 1e9)), 1);
    return { margin: tf.sub(zy, other), pred: tf.argMax(z, 1) };
  });
  zt.dispose();
  const [m, p] = await Promise.all([out.margin.data(), out.pred.data()]);
  tf.dispose([out.margin, out.pred]);
  return { margin: Float32Array.from(m), pred: Int32Array.from(p) };
}

/**
 * The L2 proposal's bump on an s×s window: concentric squares weighted 1/(k+1)² around the
 * centre of each half, positive in the top half and negative in the bottom one, unit L2 norm,
 * transposed half of the time.
 */
function bump(side: number, transpose: boolean): Float64Array {
  const out = new Float64Array(side * side);
  const half = (rows: number, row0: number, sign: number) => {
    const ci = Math.floor(rows / 2);
    const cj = Math.floor(side / 2);
    for (let i = 0; i < rows; i++) for (let j = 0; j < side; j++) {
      const ring = Math.max(Math.abs(i - ci), Math.abs(j - cj));
      let v = 0;
      for (let k = ring; k <= Math.max(ci, cj); k++) v += 1 / ((k + 1) * (k + 1));
      out[(row0 + i) * side + j] = sign * v;
    }
  };
  half(Math.floor(side / 2), 0, 1);
  half(side - Math.floor(side / 2), Math.floor(side / 2), -1);
  const norm = Math.sqrt(out.reduce((a, v) => a + v * v, 0)) || 1;
  const res = new Float64Array(side * side);
  for (let i = 0; i < side; i++) for (let j = 0; j < side; j++) res[transpose ? j * side + i : i * side + j] = out[i * side + j]! / norm;
  return res;
}

/** Scales a perturbation to L2 norm eps and clips x + δ to the bounds (into `into`). */
function placeL2(x0: Float32Array, off: number, delta: Float64Array, eps: number, lo: number, hi: number, into: Float32Array, at: number): void {
  const norm = Math.sqrt(delta.reduce((a, v) => a + v * v, 0));
  const scale = norm > 0 ? eps / norm : 0;
  for (let i = 0; i < delta.length; i++) into[at + i] = Math.min(hi, Math.max(lo, x0[off + i]! + delta[i]! * scale));
}

export async function square(model: Classifier, x: tf.Tensor4D, y: Labels, options: SquareOptions): Promise<AttackResult> {
  const fn = 'square';
  const o = { ...SQUARE_DEFAULTS, ...defined(options) };
  checkKnownOptions(fn, o, ATTACK_OPTION_NAMES);
  const queries = checkFiniteNumber(fn, 'queries', o.queries, { integer: true, min: 1 });
  const pInit = checkFiniteNumber(fn, 'pInit', o.pInit, { min: 0, minExclusive: true, max: 1 });
  check(o.norm !== 'l1', fn, () => "norm 'l1' has no Square proposal (the paper's are L∞ and L2); pass norm 'linf' or 'l2', or use a gradient attack for L1.");
  const { labels, resolved } = validateAttack(fn, model, x, y, { eps: o.eps, steps: 1, seed: o.seed, norm: o.norm });
  const isL2 = resolved.norm.name === 'l2';
  const eps = resolved.eps;
  const [n, h, w, c] = x.shape;
  const per = h * w * c;
  const [lo, hi] = model.bounds;
  const x0 = Float32Array.from(await x.data());
  const rngs = Array.from(resolved.seeds, (s) => new Rng(deriveSeed(s, 0x5a)));
  const clip = (v: number, i: number) => Math.min(hi, Math.max(lo, Math.min(x0[i]! + eps, Math.max(x0[i]! - eps, v))));

  const best = new Float32Array(x0.length);
  if (isL2) {
    // A grid of tiles of side h/5, each a bump with a random sign per channel.
    const tile = Math.max(1, Math.floor(Math.min(h, w) / 5));
    const start = (dim: number) => Math.floor((dim - tile * Math.floor(dim / tile)) / 2);
    for (let s = 0; s < n; s++) {
      const delta = new Float64Array(per);
      const b = bump(tile, false);
      for (let r0 = start(h); r0 + tile <= h; r0 += tile) for (let q0 = start(w); q0 + tile <= w; q0 += tile) {
        for (let k = 0; k < c; k++) {
          const sign = rngs[s]!.next() < 0.5 ? -1 : 1;
          for (let i = 0; i < tile; i++) for (let j = 0; j < tile; j++) delta[((r0 + i) * w + q0 + j) * c + k] = sign * b[i * tile + j]!;
        }
      }
      placeL2(x0, s * per, delta, eps, lo, hi, best, s * per);
    }
  } else {
    // Vertical stripes of ±eps (one sign per column and channel).
    for (let s = 0; s < n; s++) {
      const signs = Array.from({ length: w * c }, () => (rngs[s]!.next() < 0.5 ? -eps : eps));
      for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) for (let k = 0; k < c; k++) {
        const i = s * per + (r * w + q) * c + k;
        best[i] = clip(x0[i]! + signs[q * c + k]!, i);
      }
    }
  }
  let { margin: bestMargin } = await margins(model, best, [n, h, w, c], labels);
  if (eps > 0) {
    const pause = yielder();
    for (let it = 0; it < queries - 1; it++) {
      await pause();
      const active = Array.from({ length: n }, (_, s) => s).filter((s) => bestMargin[s]! > 0);
      if (active.length === 0) break;
      const p = pSelection(pInit, it, queries, o.rescaleSchedule !== false);
      let side = Math.max(1, Math.min(h - 1 > 0 ? h - 1 : 1, Math.round(Math.sqrt((p * per) / c))));
      if (isL2) side = Math.min(Math.max(3, side % 2 === 0 ? side + 1 : side), h, w);
      const cand = new Float32Array(active.length * per);
      active.forEach((s, a) => {
        cand.set(best.subarray(s * per, (s + 1) * per), a * per);
        const rng = rngs[s]!;
        const r0 = rng.int(Math.max(1, h - side + 1));
        const q0 = rng.int(Math.max(1, w - side + 1));
        if (!isL2) {
          for (let k = 0; k < c; k++) {
            const v = rng.next() < 0.5 ? -eps : eps;
            for (let r = r0; r < Math.min(h, r0 + side); r++) for (let q = q0; q < Math.min(w, q0 + side); q++) {
              const i = (r * w + q) * c + k;
              cand[a * per + i] = clip(x0[s * per + i]! + v, s * per + i);
            }
          }
          return;
        }
        // L2: empty a second window, refill the first with its old content plus a new bump,
        // carrying the mass of both windows and any norm still unused.
        const r1 = rng.int(Math.max(1, h - side + 1));
        const q1 = rng.int(Math.max(1, w - side + 1));
        const delta = Float64Array.from({ length: per }, (_, i) => best[s * per + i]! - x0[s * per + i]!);
        const total = delta.reduce((acc, v) => acc + v * v, 0);
        const inW = (r: number, q: number, ra: number, qa: number) => r >= ra && r < ra + side && q >= qa && q < qa + side;
        const b = bump(side, rng.next() < 0.5);
        for (let k = 0; k < c; k++) {
          let massWindows = 0;
          let massFirst = 0;
          for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) {
            const v = delta[(r * w + q) * c + k]!;
            if (inW(r, q, r0, q0) || inW(r, q, r1, q1)) massWindows += v * v;
            if (inW(r, q, r0, q0)) massFirst += v * v;
          }
          const target = Math.sqrt(Math.max(eps * eps - total, 0) / c + massWindows);
          const sign = rng.next() < 0.5 ? -1 : 1;
          const fresh = new Float64Array(side * side);
          const firstNorm = Math.sqrt(massFirst) + 1e-12;
          for (let i = 0; i < side; i++) for (let j = 0; j < side; j++) fresh[i * side + j] = sign * b[i * side + j]! + delta[((r0 + i) * w + q0 + j) * c + k]! / firstNorm;
          const fNorm = Math.sqrt(fresh.reduce((acc, v) => acc + v * v, 0)) + 1e-12;
          for (let r = r1; r < r1 + side; r++) for (let q = q1; q < q1 + side; q++) delta[(r * w + q) * c + k] = 0;
          for (let i = 0; i < side; i++) for (let j = 0; j < side; j++) delta[((r0 + i) * w + q0 + j) * c + k] = (fresh[i * side + j]! / fNorm) * target;
        }
        placeL2(x0, s * per, delta, eps, lo, hi, cand, a * per);
      });
      const { margin } = await margins(model, cand, [active.length, h, w, c], Int32Array.from(active, (s) => labels[s]!));
      active.forEach((s, a) => {
        if (margin[a]! < bestMargin[s]!) {
          bestMargin[s] = margin[a]!;
          best.set(cand.subarray(a * per, (a + 1) * per), s * per);
        }
      });
    }
  } else {
    best.set(x0);
    bestMargin = (await margins(model, best, [n, h, w, c], labels)).margin;
  }
  // Exactly inside the ball (the L2 rescaling can round a hair past eps).
  const adversarial = tf.tidy(() => resolved.norm.project(tf.tensor4d(best, [n, h, w, c]), x, eps, model.bounds));
  best.set(await adversarial.data());
  const { pred } = await margins(model, best, [n, h, w, c], labels);
  return {
    adversarial,
    success: Uint8Array.from(pred, (p, s) => (p !== labels[s] ? 1 : 0)),
    predictions: pred,
    norms: await measureDistances(adversarial, x),
    steps: queries,
    restarts: 1,
    loss: Float32Array.from(bestMargin, (m) => -m),
  };
}
