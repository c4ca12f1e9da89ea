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
 * - `distance(a, b)`: per-sample distances [N];
 * - `toHyperplane(p, w, c, bounds)`: the smallest δ (in this norm) with w·δ = c and p + δ
 *   inside bounds, per row (FAB's projection onto a linearized decision boundary); where no
 *   such δ exists, the δ inside bounds that comes closest.
 * Shapes: images [N, H, W, C]; per-sample values [N]; toHyperplane rows [N, D].
 *
 * L1 keeps the same contract: its projection is onto the L1 ball intersected with the
 * box, exact, from one sort; its direction is sparse (the top 1% of the free coordinates).
 */
import * as tf from '@tensorflow/tfjs';
import type { Bounds } from '../models/classifier.js';
import { NORM_NAMES, type NormName } from '../util/norms.js';

export interface Norm {
  readonly name: NormName | 'l1';
  randomStart(shape: readonly [number, number, number, number], eps: number, seeds: ArrayLike<number>): tf.Tensor4D;
  normalize(g: tf.Tensor4D, xAdv: tf.Tensor4D, bounds: Bounds): tf.Tensor4D;
  /** eps is one radius for the batch, or one per sample [N] (FMN's adaptive radii). */
  project(xAdv: tf.Tensor4D, x: tf.Tensor4D, eps: Radius, bounds: Bounds): tf.Tensor4D;
  distance(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor1D;
  toHyperplane(p: tf.Tensor2D, w: tf.Tensor2D, c: tf.Tensor1D, bounds: Bounds): tf.Tensor2D;
}

const TINY = 1e-12;

/** A radius for the whole batch, or one per sample. */
export type Radius = number | tf.Tensor1D;

/** The radius shaped for broadcasting against per-sample values of rank `rank` ([N, 1, ...]). */
function radius(eps: Radius, rank: 2 | 4): number | tf.Tensor {
  return typeof eps === 'number' ? eps : tf.reshape(eps, rank === 2 ? [-1, 1] : [-1, 1, 1, 1]);
}

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


const col = (t: tf.Tensor1D) => tf.reshape(t, [-1, 1]) as tf.Tensor2D;

/** Row-wise gathers t[i, idx[i, k]] as one flat gather (tfjs-wasm's GatherV2 with batchDims fails). */
function rowTake(t: tf.Tensor2D, idx: tf.Tensor2D): tf.Tensor2D {
  const [n, d] = t.shape;
  const rowStart = tf.reshape(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(d, 'int32')), [n, 1]);
  return tf.gather(tf.reshape<tf.Rank.R1>(t, [-1]), tf.add(idx, rowStart)) as unknown as tf.Tensor2D;
}

/**
 * The way each coordinate moves towards the hyperplane w·δ = c (σ·sign(w_i), σ = sign(c)) and
 * how far it can go that way inside the bounds.
 */
function towards(p: tf.Tensor2D, w: tf.Tensor2D, c: tf.Tensor1D, [lo, hi]: Bounds): { dir: tf.Tensor2D; room: tf.Tensor2D } {
  const sigma = tf.where(tf.less(c, 0), tf.fill(c.shape, -1), tf.fill(c.shape, 1)) as tf.Tensor1D;
  const dir = tf.mul(tf.sign(w), col(sigma)) as tf.Tensor2D;
  return { dir, room: tf.where(tf.greater(dir, 0), tf.sub(hi, p), tf.sub(p, lo)) as tf.Tensor2D };
}

/**
 * Solves h(s) = c per row for s >= 0, where h(s) = Σ_i slope_i · min(s, bp_i) is the
 * nondecreasing, piecewise-linear sum of coordinates that grow at slope_i until they saturate
 * at breakpoint bp_i. Exact, from one sort of the breakpoints: with them in increasing order,
 * h at the j-th is (sum of the saturated values before it) + bp_j · (slopes from j on). Where
 * h never reaches c, returns the largest breakpoint (everything saturated).
 */
function solveBreakpoints(bp: tf.Tensor2D, slope: tf.Tensor2D, c: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const [n, d] = bp.shape;
    const order = tf.topk(tf.neg(bp), d).indices as tf.Tensor2D;
    const b = rowTake(bp, order);
    const sl = rowTake(slope, order);
    const before = tf.cumsum(tf.mul(sl, b), 1, true) as tf.Tensor2D; // saturated values before j
    const from = tf.cumsum(sl, 1, false, true) as tf.Tensor2D; // slopes from j on
    const atBreak = tf.add(before, tf.mul(b, from));
    // The piece holding the solution: the first breakpoint where h reaches c.
    const j = tf.sum(tf.cast(tf.less(atBreak, col(c)), 'int32'), 1) as tf.Tensor1D;
    const jc = tf.cast(tf.minimum(j, tf.scalar(d - 1, 'int32')), 'int32') as tf.Tensor1D;
    const pick = (t: tf.Tensor2D) => tf.reshape(rowTake(t, tf.reshape(jc, [n, 1]) as tf.Tensor2D), [n]) as tf.Tensor1D;
    const exact = tf.div(tf.sub(c, pick(before)), tf.maximum(pick(from), 1e-30));
    const largest = tf.max(bp, 1);
    return tf.where(tf.less(j, d), tf.minimum(exact, largest), largest) as tf.Tensor1D;
  });
}

export const linf: Norm = {
  name: 'linf',
  randomStart: (shape, eps, seeds) => perSampleDraw(shape, seeds, (s, seed) => tf.randomUniform(s, -eps, eps, 'float32', seed)),
  normalize: (g) => tf.sign(g) as tf.Tensor4D,
  project: (xAdv, x, eps, [lo, hi]) => tf.tidy(() => {
    const e = radius(eps, 4);
    return tf.clipByValue(tf.minimum(tf.maximum(xAdv, tf.sub(x, e)), tf.add(x, e)), lo, hi) as tf.Tensor4D;
  }),
  distance: (a, b) => tf.tidy(() => tf.max(tf.abs(perSample(tf.sub(a, b))), 1) as tf.Tensor1D),
  // min t with |δ_i| <= t: δ_i = clip(t·σ·sign(w_i), l_i, u_i), σ = sign(c); h(t) = σ·w·δ(t).
  toHyperplane: (p, w, c, bounds) => tf.tidy(() => {
    const { dir, room } = towards(p, w, c, bounds);
    const delta = (t: tf.Tensor1D) => tf.mul(dir, tf.minimum(col(t), room)) as tf.Tensor2D;
    const t = solveBreakpoints(room, tf.where(tf.notEqual(dir, 0), tf.abs(w), tf.zerosLike(w)) as tf.Tensor2D, tf.abs(c));
    return delta(t);
  }),
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
    const scale = tf.minimum(1, tf.div(radius(eps, 4), tf.add(l2Norms(delta), TINY)));
    return tf.clipByValue(tf.add(x, tf.mul(delta, scale)), lo, hi) as tf.Tensor4D;
  }),
  distance: (a, b) => tf.tidy(() => tf.sqrt(tf.sum(tf.square(perSample(tf.sub(a, b))), 1)) as tf.Tensor1D),
  // δ_i = clip(σλ·w_i, l_i, u_i) (KKT), σ = sign(c), λ >= 0 such that w·δ = c; h(λ) = σ·w·δ.
  toHyperplane: (p, w, c, [lo, hi]) => tf.tidy(() => {
    const sigma = tf.where(tf.less(c, 0), tf.fill(c.shape, -1), tf.fill(c.shape, 1)) as tf.Tensor1D;
    const sw = tf.mul(w, col(sigma)) as tf.Tensor2D;
    const l = tf.sub(lo, p) as tf.Tensor2D;
    const u = tf.sub(hi, p) as tf.Tensor2D;
    const delta = (lam: tf.Tensor1D) => tf.minimum(tf.maximum(tf.mul(sw, col(lam)), l), u) as tf.Tensor2D;
    // Coordinate i saturates at λ = reach_i / |w_i|; before that it adds w_i² per unit of λ.
    const reach = tf.where(tf.greater(sw, 0), u, tf.neg(l)) as tf.Tensor2D;
    const moving = tf.notEqual(sw, 0);
    const lam = solveBreakpoints(tf.where(moving, tf.div(reach, tf.abs(sw)), tf.zerosLike(sw)) as tf.Tensor2D, tf.square(w) as tf.Tensor2D, tf.abs(c));
    return delta(lam);
  }),
};

/** Each coordinate's rank in its row from the row's sort order (topk indices) [N, D]: the inverse permutation. */
function ranksOf(order: tf.Tensor2D): tf.Tensor2D {
  return tf.topk(tf.neg(tf.cast(order, 'float32')), order.shape[1]).indices as tf.Tensor2D;
}

/** Fraction of the free coordinates the L1 direction moves (the sparse step of Tramèr & Boneh's SLIDE). */
export const L1_SPARSITY = 0.01;

export const l1: Norm = {
  name: 'l1',
  // Uniform in the L1 ball: random signs times E_i / (E_1 + ... + E_{d+1}) for i.i.d.
  // exponentials E (the first d coordinates of a uniform point of the simplex), scaled by eps.
  randomStart: (shape, eps, seeds) => perSampleDraw(shape, seeds, (s, seed) => {
    const d = s[1] * s[2] * s[3];
    const e = tf.neg(tf.log(tf.randomUniform([1, d + 1], 1e-12, 1, 'float32', seed)));
    const sign = tf.sign(tf.randomUniform([1, d], -1, 1, 'float32', seed + 1));
    const point = tf.div(tf.slice(e, [0, 0], [1, d]), tf.sum(e));
    return tf.reshape(tf.mul(tf.mul(point, sign), eps), s);
  }),
  // Steepest ascent under L1 moves one coordinate; that stalls a loop, so the direction spreads
  // the unit of L1 evenly over the top L1_SPARSITY of the free coordinates by |g|, with their signs.
  normalize: (g, xAdv, [lo, hi]) => tf.tidy(() => {
    const blocked = tf.logicalOr(tf.logicalAnd(tf.lessEqual(xAdv, lo), tf.less(g, 0)), tf.logicalAnd(tf.greaterEqual(xAdv, hi), tf.greater(g, 0)));
    const free = perSample(tf.where(blocked, tf.zerosLike(g), g) as tf.Tensor4D);
    const d = free.shape[1];
    const k = Math.max(1, Math.ceil(L1_SPARSITY * d));
    const mag = tf.abs(free);
    const top = ranksOf(tf.topk(mag, d).indices as tf.Tensor2D);
    const chosen = tf.logicalAnd(tf.less(top, k), tf.greater(mag, 0));
    const count = tf.maximum(tf.sum(tf.cast(chosen, 'float32'), 1, true), 1);
    return tf.reshape(tf.div(tf.where(chosen, tf.sign(free), tf.zerosLike(free)), count), g.shape) as tf.Tensor4D;
  }),
  // argmin ‖z − xAdv‖₂ over ‖z − x‖₁ <= eps and the box: δ_i = sign(v_i)·min(max(|v_i| − λ, 0), r_i)
  // (soft threshold, then the box), v = xAdv − x, r_i the room towards v_i's side, λ >= 0 the
  // smallest with Σ|δ_i| <= eps. S(λ) = Σ max(|v_i| − λ, 0) − max(|v_i| − r_i − λ, 0) is
  // piecewise linear with breakpoints |v_i| and |v_i| − r_i: sorted, exclusive cumsums give S at
  // each, and λ is exact on the piece where S crosses eps.
  project: (xAdv, x, radii, [lo, hi]) => tf.tidy(() => {
    const eps = radius(radii, 2);
    const v = perSample(tf.sub(xAdv, x) as tf.Tensor4D);
    const xf = perSample(x);
    const a = tf.abs(v) as tf.Tensor2D;
    const r = tf.maximum(tf.where(tf.greater(v, 0), tf.sub(hi, xf), tf.sub(xf, lo)), 0) as tf.Tensor2D;
    const d = a.shape[1];
    const knots = tf.concat([a, tf.sub(a, r)], 1) as tf.Tensor2D;
    const signs = tf.concat([tf.onesLike(a), tf.neg(tf.onesLike(a))], 1) as tf.Tensor2D;
    const order = tf.topk(knots, 2 * d).indices as tf.Tensor2D;
    const c = rowTake(knots, order);
    const s = rowTake(signs, order);
    const A = tf.cumsum(tf.mul(s, c), 1, true) as tf.Tensor2D;
    const B = tf.cumsum(s, 1, true) as tf.Tensor2D;
    const atKnot = tf.sub(A, tf.mul(c, B));
    const j = tf.sum(tf.cast(tf.less(atKnot, eps), 'int32'), 1, true) as tf.Tensor2D; // first knot where S >= eps
    const jc = tf.minimum(j, tf.scalar(2 * d - 1, 'int32')) as tf.Tensor2D;
    const pick = (t: tf.Tensor2D) => rowTake(t, jc);
    const onPiece = tf.div(tf.sub(pick(A), eps), tf.maximum(pick(B), 1));
    // j = 0 only when eps = 0 (S = 0 at the largest knot): λ = the largest knot zeroes every coordinate.
    // j = 2d (S below eps at every knot) means the point is inside: below the smallest knot S is
    // constant (as many +1 as −1 terms), so S(0) < eps, and `inside` below sets λ = 0.
    const lam = tf.where(tf.equal(j, 0), pick(c), onPiece);
    const inside = tf.lessEqual(tf.sum(tf.minimum(a, r), 1, true), eps);
    const lambda = tf.where(inside, tf.zerosLike(lam), tf.maximum(lam, 0));
    let delta = tf.mul(tf.sign(v), tf.minimum(tf.maximum(tf.sub(a, lambda), 0), r)) as tf.Tensor2D;
    // Float rounding can leave Σ|δ| a few ulps past eps; shrinking towards 0 keeps box and ball.
    const len = tf.sum(tf.abs(delta), 1, true);
    delta = tf.mul(delta, tf.minimum(1, tf.div(eps, tf.maximum(len, 1e-30)))) as tf.Tensor2D;
    return tf.clipByValue(tf.reshape(tf.add(xf, delta), x.shape), lo, hi) as tf.Tensor4D;
  }),
  distance: (a, b) => tf.tidy(() => tf.sum(tf.abs(perSample(tf.sub(a, b))), 1) as tf.Tensor1D),
  // min Σ|δ_i| with w·δ = c in the box is a fractional knapsack: coordinates in order of |w_i|
  // (the most progress per unit of L1), each moved to its bound until w·δ reaches c.
  toHyperplane: (p, w, c, bounds) => fillInOrder(p, w, c, bounds, 'weight'),
};

/**
 * The hyperplane step that moves whole coordinates in turn: in order of `by` ('weight': |w_i|,
 * the most progress per unit moved; 'gain': |w_i|·room_i, the most progress per coordinate),
 * each to its bound, the last one only as far as w·δ = c needs.
 */
function fillInOrder(p: tf.Tensor2D, w: tf.Tensor2D, c: tf.Tensor1D, bounds: Bounds, by: 'weight' | 'gain'): tf.Tensor2D {
  return tf.tidy(() => {
    const d = p.shape[1];
    const { dir, room: reach } = towards(p, w, c, bounds);
    const room = tf.maximum(reach, 0) as tf.Tensor2D;
    const mag = tf.abs(w) as tf.Tensor2D;
    const full = tf.mul(mag, room) as tf.Tensor2D;
    const order = tf.topk(by === 'weight' ? mag : full, d).indices as tf.Tensor2D;
    const before = tf.cumsum(rowTake(full, order), 1, true) as tf.Tensor2D; // progress of the coordinates ahead of each
    const ahead = rowTake(before, ranksOf(order)); // per coordinate, in place
    const part = tf.div(tf.sub(col(tf.abs(c)), ahead), tf.maximum(mag, 1e-30));
    const move = tf.where(tf.greater(mag, 0), tf.minimum(tf.maximum(part, 0), room), tf.zerosLike(room));
    return tf.mul(dir, move) as tf.Tensor2D;
  });
}

/** Keeps each row's k largest |δ_i| (k = ⌊eps⌋ per row; ties to the lower index) [N, D]. */
function keepLargest(delta: tf.Tensor2D, eps: Radius): tf.Tensor2D {
  return tf.tidy(() => {
    const d = delta.shape[1];
    const k = tf.floor(radius(eps, 2) as tf.Tensor);
    const rank = ranksOf(tf.topk(tf.abs(delta), d).indices as tf.Tensor2D);
    return tf.where(tf.less(tf.cast(rank, 'float32'), k), delta, tf.zerosLike(delta)) as tf.Tensor2D;
  });
}

/**
 * L0 counts the values changed. Its ball is a budget of ⌊eps⌋ values: the projection keeps the
 * largest changes; the random start changes ⌊eps⌋ values chosen uniformly, each by a uniform
 * amount in [−1, 1] (the bounds clip); the direction is L2's (the projection makes it sparse);
 * the hyperplane step moves the fewest values, largest progress |w_i|·room_i first.
 */
export const l0: Norm = {
  name: 'l0',
  randomStart: (shape, eps, seeds) => perSampleDraw(shape, seeds, (s, seed) => {
    const d = s[1] * s[2] * s[3];
    const chosen = keepLargest(tf.randomUniform([1, d], 0.5, 1, 'float32', seed) as tf.Tensor2D, Math.min(d, eps));
    const amount = tf.randomUniform([1, d], -1, 1, 'float32', seed + 1);
    return tf.reshape(tf.where(tf.greater(chosen, 0), amount, tf.zerosLike(amount)), s);
  }),
  normalize: (g, xAdv, bounds) => l2.normalize(g, xAdv, bounds),
  project: (xAdv, x, eps, [lo, hi]) => tf.tidy(() => {
    const kept = keepLargest(perSample(tf.sub(xAdv, x) as tf.Tensor4D), eps);
    return tf.clipByValue(tf.add(x, tf.reshape(kept, x.shape)), lo, hi) as tf.Tensor4D;
  }),
  distance: (a, b) => tf.tidy(() => tf.sum(tf.cast(tf.notEqual(perSample(a), perSample(b)), 'float32'), 1) as tf.Tensor1D),
  toHyperplane: (p, w, c, bounds) => fillInOrder(p, w, c, bounds, 'gain'),
};

export const NORMS: Readonly<Record<NormName, Norm>> = Object.freeze({ linf, l2, l1, l0 });
export { NORM_NAMES, type NormName };

/** Per-sample distances in every norm, as the results report them. */
export type Distances = Record<NormName, Float32Array>;

/** The distances between `a` and `b` in every norm, read to the host. */
export async function measureDistances(a: tf.Tensor4D, b: tf.Tensor4D): Promise<Distances> {
  const ts = NORM_NAMES.map((k) => NORMS[k].distance(a, b));
  try {
    const values = await Promise.all(ts.map((t) => t.data()));
    return Object.fromEntries(NORM_NAMES.map((k, i) => [k, Float32Array.from(values[i]!)])) as Distances;
  } finally {
    tf.dispose(ts);
  }
}
