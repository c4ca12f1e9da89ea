/**
 * The L1 geometry of lp.ts: projection onto the L1 ball intersected with the box against a
 * closed form and brute force on small cases, and fast-check properties (inside ball and box,
 * idempotent, nearest point); the random start inside the ball; the sparse direction; the
 * L1 distance to a hyperplane against an exhaustive vertex search.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { l1 } from '../../src/attacks/lp.js';

const img = (v: number[]) => tf.tensor4d(v, [1, 1, v.length, 1]);
const l1len = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + Math.abs(v - b[i]!), 0);
const sq = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);

async function project(v: number[], x: number[], eps: number, bounds: [number, number] = [0, 1]): Promise<Float32Array> {
  const vt = img(v);
  const xt = img(x);
  const out = l1.project(vt, xt, eps, bounds);
  const d = (await out.data()) as Float32Array;
  tf.dispose([out, vt, xt]);
  return d;
}

/**
 * Reference projection in float64: bisection on λ of Σ|clip(soft(v − x, λ))| = eps (the KKT
 * conditions of the problem), as an independent check of the sort-based solve.
 */
function reference(v: number[], x: number[], eps: number, [lo, hi]: [number, number]): number[] {
  const delta = (lam: number) => v.map((vi, i) => {
    const w = vi - x[i]!;
    const r = w > 0 ? hi - x[i]! : x[i]! - lo;
    return Math.sign(w) * Math.min(Math.max(Math.abs(w) - lam, 0), Math.max(r, 0));
  });
  const len = (lam: number) => delta(lam).reduce((s, t) => s + Math.abs(t), 0);
  if (len(0) <= eps) return delta(0).map((t, i) => x[i]! + t);
  let a = 0;
  let b = Math.max(...v.map((vi, i) => Math.abs(vi - x[i]!)));
  for (let it = 0; it < 200; it++) {
    const m = (a + b) / 2;
    if (len(m) > eps) a = m; else b = m;
  }
  return delta(b).map((t, i) => x[i]! + t);
}

describe('L1 projection onto ball ∩ box', () => {
  it('matches closed forms', async () => {
    // Inside the ball: unchanged.
    expect(Array.from(await project([0.6, 0.5], [0.5, 0.5], 0.2))).toEqual([Math.fround(0.6), 0.5]);
    // One coordinate outside: shrunk to eps along it.
    expect((await project([0.9, 0.5], [0.5, 0.5], 0.1))[0]).toBeCloseTo(0.6, 6);
    // Two equal coordinates: soft threshold splits eps evenly.
    const two = await project([0.8, 0.2], [0.5, 0.5], 0.2);
    expect(two[0]).toBeCloseTo(0.6, 6);
    expect(two[1]).toBeCloseTo(0.4, 6);
    // Unequal: λ = (0.4 + 0.1 − 0.3) / 2 = 0.1 → δ = (0.3, 0): the small one is zeroed... then
    // with eps 0.3 exactly the large one alone carries it.
    const uneq = await project([0.9, 0.6], [0.5, 0.5], 0.3);
    expect(uneq[0]).toBeCloseTo(0.8, 6);
    expect(uneq[1]).toBeCloseTo(0.5, 6);
    // The box binds first: x at 0.95 can move 0.05 up; the rest of the budget goes elsewhere.
    const boxed = await project([1.5, 0.1], [0.95, 0.5], 0.3);
    expect(boxed[0]).toBeCloseTo(1, 6);
    expect(boxed[1]).toBeCloseTo(0.25, 6);
    // eps = 0: the clean point.
    expect(Array.from(await project([0.9, 0.1], [0.5, 0.5], 0))).toEqual([0.5, 0.5]);
  });

  it('agrees with a float64 bisection reference, rows independent', async () => {
    const rnd = fc.sample(fc.array(fc.double({ min: -0.5, max: 1.5, noNaN: true }), { minLength: 8, maxLength: 8 }), { numRuns: 30, seed: 7 });
    for (const [k, row] of rnd.entries()) {
      const x = row.map((_, i) => ((i * 37 + k * 11) % 100) / 100);
      const v = row;
      const eps = 0.05 + (k % 7) * 0.3;
      const got = await project(v, x, eps);
      const want = reference(v, x, eps, [0, 1]);
      for (let i = 0; i < v.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(2e-6);
    }
  });

  it('keeps ball and box, is idempotent and is the nearest point (fast-check)', async () => {
    const arb = fc.record({
      d: fc.integer({ min: 1, max: 12 }),
      seed: fc.integer({ min: 0, max: 1 << 20 }),
      eps: fc.double({ min: 0, max: 4, noNaN: true }),
      spread: fc.double({ min: 0.01, max: 3, noNaN: true }),
    });
    await fc.assert(fc.asyncProperty(arb, async ({ d, seed, eps, spread }) => {
      const rng = fc.sample(fc.double({ min: 0, max: 1, noNaN: true }), { numRuns: 2 * d, seed });
      const x = rng.slice(0, d);
      const v = rng.slice(d).map((u, i) => x[i]! + (u - 0.5) * 2 * spread);
      const before = tf.memory().numTensors;
      const p = await project(v, x, eps);
      expect(tf.memory().numTensors).toBe(before);
      for (const t of p) { expect(t).toBeGreaterThanOrEqual(0); expect(t).toBeLessThanOrEqual(1); }
      expect(l1len(p, x)).toBeLessThanOrEqual(eps * (1 + 1e-6) + 1e-6);
      const again = await project(Array.from(p), x, eps);
      for (let i = 0; i < d; i++) expect(Math.abs(again[i]! - p[i]!)).toBeLessThan(1e-6);
      // Nearest: no feasible point of a random family is closer to v (convex problem, so
      // the reference optimum bounds every feasible point).
      const best = sq(p, v);
      const ref = reference(v, x, eps, [0, 1]);
      expect(best).toBeLessThanOrEqual(sq(ref, v) + 1e-5);
      for (let t = 0; t < 5; t++) {
        const u = fc.sample(fc.double({ min: 0, max: 1, noNaN: true }), { numRuns: d, seed: seed + t + 1 });
        let cand = u;
        const len = l1len(cand, x);
        if (len > eps) cand = cand.map((c, i) => x[i]! + (c - x[i]!) * (eps / len));
        expect(best).toBeLessThanOrEqual(sq(cand, v) + 1e-5);
      }
    }), { numRuns: 120 });
  });

  it('projects a batch row by row, on general bounds', async () => {
    const x = tf.tensor4d([0, 0, 0, 5, 5, 5], [2, 1, 3, 1]);
    const v = tf.tensor4d([4, -1, 0, 9, 5, 1], [2, 1, 3, 1]);
    const p = l1.project(v, x, 2, [-1, 6]);
    const got = Array.from(await p.data());
    p.dispose();
    const want = [...reference([4, -1, 0], [0, 0, 0], 2, [-1, 6]), ...reference([9, 5, 1], [5, 5, 5], 2, [-1, 6])];
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 5));
    tf.dispose([x, v]);
  });
});

describe('L1 random start, direction and hyperplane', () => {
  it('draws inside the ball, one draw per seed, sample-independent', async () => {
    const a = l1.randomStart([3, 4, 4, 2], 0.7, [1, 2, 3]);
    const b = l1.randomStart([1, 4, 4, 2], 0.7, [2]);
    const av = await a.data();
    const bv = await b.data();
    const dist = await l1.distance(a, tf.zerosLike(a)).data();
    for (const t of dist) { expect(t).toBeLessThanOrEqual(0.7 * (1 + 1e-6)); expect(t).toBeGreaterThan(0); }
    expect(Array.from(av.slice(32, 64))).toEqual(Array.from(bv));
    tf.dispose([a, b]);
  });

  it('the mean radius of uniform draws is d/(d+1) of eps', async () => {
    const n = 400;
    const d = 3;
    const s = l1.randomStart([n, 1, d, 1], 1, Array.from({ length: n }, (_, i) => i + 1));
    const r = await l1.distance(s, tf.zerosLike(s)).data();
    const mean = Array.from(r).reduce((p, q) => p + q, 0) / n;
    // Radius of a uniform point of the d-dim L1 ball: P(R <= t) = t^d, mean d/(d+1) = 0.75, sd ≈ 0.19/√n.
    expect(Math.abs(mean - d / (d + 1))).toBeLessThan(0.03);
    s.dispose();
  });

  it('moves the top 1% free coordinates with unit L1 length', async () => {
    const g = tf.tensor4d(Array.from({ length: 200 }, (_, i) => (i === 7 ? 5 : i === 9 ? -4 : i === 3 ? 9 : 0.1)), [1, 10, 20, 1]);
    const at = tf.tensor4d(Array.from({ length: 200 }, (_, i) => (i === 3 ? 1 : 0.5)), [1, 10, 20, 1]);
    const dir = Array.from(await l1.normalize(g, at, [0, 1]).data());
    // Coordinate 3 is at the upper bound with a positive gradient: blocked. Top 2 of the rest: 7 and 9.
    expect(dir[3]).toBe(0);
    expect(dir[7]).toBeCloseTo(0.5, 6);
    expect(dir[9]).toBeCloseTo(-0.5, 6);
    expect(dir.reduce((s, t) => s + Math.abs(t), 0)).toBeCloseTo(1, 6);
    tf.dispose([g, at]);
  });

  it('finds the L1-closest point of a hyperplane in the box (vertex search)', async () => {
    // The optimum of an LP over {w·δ = c} ∩ box moves at most one coordinate partially; try all
    // orders of filling on small cases.
    const cases = fc.sample(fc.record({ w: fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: 4, maxLength: 4 }), p: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }), c: fc.double({ min: -1.5, max: 1.5, noNaN: true }) }), { numRuns: 40, seed: 3 });
    for (const { w, p, c } of cases) {
      const delta = Array.from(await l1.toHyperplane(tf.tensor2d(p, [1, 4]), tf.tensor2d(w, [1, 4]), tf.tensor1d([c]), [0, 1]).data());
      delta.forEach((t, i) => { expect(p[i]! + t).toBeGreaterThanOrEqual(-1e-6); expect(p[i]! + t).toBeLessThanOrEqual(1 + 1e-6); });
      const reach = w.reduce((s, wi, i) => s + Math.abs(wi) * (Math.sign(c) * wi > 0 ? 1 - p[i]! : p[i]!), 0);
      const reached = w.reduce((s, wi, i) => s + wi * delta[i]!, 0);
      if (reach >= Math.abs(c)) {
        expect(Math.abs(reached - c)).toBeLessThan(1e-5);
        // Any single-coordinate move that reaches c costs at least as much.
        const cost = delta.reduce((s, t) => s + Math.abs(t), 0);
        for (let i = 0; i < 4; i++) {
          const need = Math.abs(c / (w[i] || 1e-30));
          const fits = w[i] !== 0 && (Math.sign(c / w[i]!) > 0 ? p[i]! + need <= 1 : p[i]! - need >= 0);
          if (fits) expect(cost).toBeLessThanOrEqual(need + 1e-5);
        }
      } else {
        expect(Math.abs(reached)).toBeCloseTo(reach, 4); // everything saturated its way
      }
    }
  });
});
