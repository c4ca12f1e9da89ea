import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { bim, fgsm, mifgsm, pgd } from '../../src/attacks/index.js';
import type { AttackResult } from '../../src/attacks/gradient_descent.js';
import type { Classifier } from '../../src/models/classifier.js';
import { useBackend } from '../helpers.js';
import { images, linearModel } from './fixtures.js';

type AnyAttack = (m: Classifier, x: tf.Tensor4D, y: number[], o: { eps: number; norm: 'linf' | 'l2'; seed: number; steps?: number }) => Promise<AttackResult>;
const ATTACKS: Record<string, AnyAttack> = {
  fgsm: (m, x, y, o) => fgsm(m, x, y, o),
  bim: (m, x, y, o) => bim(m, x, y, { ...o, steps: 3 }),
  pgd: (m, x, y, o) => pgd(m, x, y, { ...o, steps: 3, restarts: 2 }),
  mifgsm: (m, x, y, o) => mifgsm(m, x, y, { ...o, steps: 3 }),
};

const arbCase = fc.record({
  n: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 5 }),
  w: fc.integer({ min: 1, max: 5 }),
  c: fc.integer({ min: 1, max: 3 }),
  eps: fc.double({ min: 0, max: 1.5, noNaN: true }),
  seed: fc.integer({ min: 0, max: 1000 }),
  classes: fc.integer({ min: 2, max: 5 }),
});

for (const backend of ['wasm', 'cpu'] as const) {
  for (const [name, attack] of Object.entries(ATTACKS)) {
    for (const norm of ['linf', 'l2'] as const) {
      describe(`${name} ${norm} on ${backend}`, () => {
        it('stays inside the eps-ball and the bounds, is deterministic for a seed and leaks no tensors', async () => {
          await useBackend(backend);
          await fc.assert(fc.asyncProperty(arbCase, async (c) => {
            const shape: [number, number, number] = [c.h, c.w, c.c];
            const model = linearModel(shape, c.classes, c.seed);
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
              let l2 = 0;
              let li = 0;
              for (let i = s * per; i < (s + 1) * per; i++) {
                expect(a[i]!).toBeGreaterThanOrEqual(0);
                expect(a[i]!).toBeLessThanOrEqual(1);
                const d = a[i]! - xs[i]!;
                l2 += d * d;
                li = Math.max(li, Math.abs(d));
              }
              expect(norm === 'linf' ? li : Math.sqrt(l2)).toBeLessThanOrEqual(c.eps + tol);
            }
            tf.dispose([r1.adversarial, r2.adversarial, x]);
          }), { numRuns: 12, seed: 42 });
        });

        it('eps = 0 returns the input, byte for byte', async () => {
          await useBackend(backend);
          const shape: [number, number, number] = [3, 3, 2];
          const model = linearModel(shape, 3, 1);
          const x = images(2, shape, 2);
          const r = await attack(model, x, [0, 1], { eps: 0, norm, seed: 1 });
          const [a, xs] = await Promise.all([r.adversarial.data(), x.data()]);
          expect(Buffer.from(a.buffer).equals(Buffer.from(xs.buffer))).toBe(true);
          expect(Array.from(r.norms.linf)).toEqual([0, 0]);
          tf.dispose([r.adversarial, x]);
        });
      });
    }
  }
}

describe('attacks agree across backends', () => {
  it('PGD on wasm and on cpu lands on the same points (to float tolerance)', async () => {
    const run = async (backend: 'wasm' | 'cpu') => {
      await useBackend(backend);
      const model = linearModel([4, 4, 1], 4, 3);
      const x = images(3, [4, 4, 1], 9);
      const r = await pgd(model, x, [0, 1, 2], { eps: 0.1, steps: 5, seed: 3 });
      const a = await r.adversarial.data();
      tf.dispose([x, r.adversarial]);
      return a;
    };
    const a = await run('wasm');
    const b = await run('cpu');
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-5);
  });
});
