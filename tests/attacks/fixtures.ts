import fc from 'fast-check';
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { AttackResult } from '../../src/attacks/gradient_descent.js';
import { fromFunction, type Classifier } from '../../src/models/classifier.js';
import type { NormName } from '../../src/util/norms.js';
import { uniform } from '../helpers.js';

/** A linear classifier logits = flatten(x) · W + b with seeded weights, for any image shape. */
export function linearModel(shape: [number, number, number], numClasses: number, seed: number, smooth = false): Classifier {
  const d = shape[0] * shape[1] * shape[2];
  const w = tf.keep(tf.tensor2d(uniform(d * numClasses, seed), [d, numClasses]));
  const b = tf.keep(tf.tensor1d(uniform(numClasses, seed + 1, -0.1, 0.1)));
  return fromFunction((x) => {
    const z = tf.add(tf.matMul(tf.reshape(x, [x.shape[0], d]), w), b) as tf.Tensor2D;
    return smooth ? (tf.mul(tf.tanh(z), 3) as tf.Tensor2D) : z;
  }, { numClasses, inputShape: shape });
}

export function images(n: number, shape: [number, number, number], seed: number): tf.Tensor4D {
  return tf.tensor4d(uniform(n * shape[0] * shape[1] * shape[2], seed, 0, 1), [n, ...shape]);
}

export type PropertyAttack = (m: Classifier, x: tf.Tensor4D, y: number[], o: { eps: number; norm: NormName; seed: number }) => Promise<AttackResult>;

/**
 * The property every attack keeps on random linear models (fast-check): the result stays
 * inside the eps-ball and the bounds, the same seed gives the same bytes, and no tensor leaks.
 */
export async function assertBallProperty(attack: PropertyAttack, norm: NormName, o: { numRuns: number; smooth: boolean; maxSide: number; maxClasses: number }): Promise<void> {
  const arbCase = fc.record({
    n: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 1, max: o.maxSide }),
    w: fc.integer({ min: 1, max: o.maxSide }),
    c: fc.integer({ min: 1, max: 3 }),
    eps: fc.double({ min: 0, max: 1.5, noNaN: true }),
    seed: fc.integer({ min: 0, max: 1000 }),
    classes: fc.integer({ min: 2, max: o.maxClasses }),
  });
  await fc.assert(fc.asyncProperty(arbCase, async (c) => {
    const shape: [number, number, number] = [c.h, c.w, c.c];
    const model = linearModel(shape, c.classes, c.seed, o.smooth);
    const x = images(c.n, shape, c.seed + 1);
    const y = Array.from({ length: c.n }, (_, i) => (i + c.seed) % c.classes);
    const before = tf.memory().numTensors;
    const r1 = await attack(model, x, y, { eps: c.eps, norm, seed: c.seed });
    const r2 = await attack(model, x, y, { eps: c.eps, norm, seed: c.seed });
    expect(tf.memory().numTensors).toBe(before + 2);
    const [a, b, xs] = await Promise.all([r1.adversarial.data(), r2.adversarial.data(), x.data()]);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    const per = c.h * c.w * c.c;
    const tol = 1e-6 * Math.max(1, c.eps) + 2e-7;
    for (let s = 0; s < c.n; s++) {
      let sq = 0;
      let li = 0;
      let ab = 0;
      let changed = 0;
      for (let i = s * per; i < (s + 1) * per; i++) {
        expect(a[i]!).toBeGreaterThanOrEqual(0);
        expect(a[i]!).toBeLessThanOrEqual(1);
        const d = a[i]! - xs[i]!;
        sq += d * d;
        li = Math.max(li, Math.abs(d));
        ab += Math.abs(d);
        if (d !== 0) changed++;
      }
      if (norm === 'l0') expect(changed).toBeLessThanOrEqual(Math.floor(c.eps));
      else expect(norm === 'linf' ? li : norm === 'l2' ? Math.sqrt(sq) : ab).toBeLessThanOrEqual(c.eps + tol * (norm === 'l1' ? per : 1));
      // The distances reported are those of the returned batch.
      expect(r1.norms.linf[s]).toBeCloseTo(li, 5);
      expect(r1.norms.l2[s]).toBeCloseTo(Math.sqrt(sq), 5);
      expect(r1.norms.l1[s]).toBeCloseTo(ab, 4);
      expect(r1.norms.l0[s]).toBe(changed);
    }
    tf.dispose([r1.adversarial, r2.adversarial, x]);
  }), { numRuns: o.numRuns, seed: 42 });
}
