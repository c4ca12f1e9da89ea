import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { fgsm } from '../../src/attacks/fgsm.js';
import { objective, LOSSES } from '../../src/attacks/losses.js';
import { fromFunction } from '../../src/models/classifier.js';
import { uniform, useBackend } from '../helpers.js';
import { linearModel } from './fixtures.js';

/** Two classes, logits z_k = w_k · x. */
function twoClass(w0: Float32Array, w1: Float32Array) {
  const d = w0.length;
  const W = tf.keep(tf.tensor2d(Array.from({ length: d * 2 }, (_, i) => (i % 2 === 0 ? w0[i >> 1]! : w1[i >> 1]!)), [d, 2]));
  return fromFunction((x) => tf.matMul(tf.reshape(x, [x.shape[0], d]), W) as tf.Tensor2D, { numClasses: 2, inputShape: [1, 1, d] });
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`closed forms on ${backend}`, () => {
    it('FGSM L∞ on a two-class linear model gives exactly clip(x + eps·sign(w_other − w_true))', async () => {
      await useBackend(backend);
      const d = 16;
      const w0 = uniform(d, 1);
      const w1 = uniform(d, 2);
      const model = twoClass(w0, w1);
      const xs = uniform(2 * d, 3, 0, 1);
      const x = tf.tensor4d(xs, [2, 1, 1, d]);
      const eps = 0.2;
      const r = await fgsm(model, x, [0, 1], { eps });
      const adv = await r.adversarial.data();
      for (let s = 0; s < 2; s++) {
        for (let i = 0; i < d; i++) {
          const dir = s === 0 ? Math.sign(w1[i]! - w0[i]!) : Math.sign(w0[i]! - w1[i]!);
          const expected = Math.fround(Math.min(1, Math.max(0, Math.fround(xs[s * d + i]! + Math.fround(eps * dir)))));
          expect(adv[s * d + i]).toBe(expected);
        }
      }
      tf.dispose([x, r.adversarial]);
    });

    it('FGM L2 steps eps along the normalized gradient (w_other − w_true)/‖·‖₂', async () => {
      await useBackend(backend);
      const d = 16;
      const w0 = uniform(d, 4);
      const w1 = uniform(d, 5);
      const model = twoClass(w0, w1);
      const x = tf.fill([1, 1, 1, d], 0.5) as tf.Tensor4D;
      const eps = 0.3;
      const r = await fgsm(model, x, [0], { eps, norm: 'l2' });
      const adv = await r.adversarial.data();
      const g = Array.from(w1, (v, i) => v - w0[i]!);
      const norm = Math.hypot(...g);
      g.forEach((gi, i) => expect(adv[i]!).toBeCloseTo(0.5 + (eps * gi) / norm, 5));
      expect(r.norms.l2[0]!).toBeCloseTo(eps, 5);
      tf.dispose([x, r.adversarial]);
    });
  });
}

describe('input gradients of every loss match finite differences', () => {
  for (const loss of LOSSES) {
    for (const targetedMode of [false, true]) {
      it(`${loss}${targetedMode ? ' (targeted)' : ''}`, async () => {
        await useBackend('cpu');
        const model = linearModel([1, 1, 6], 5, 11, true);
        const x0 = uniform(6, 12, 0.2, 0.8);
        // Label 4 is the second-largest logit here; with the third-largest, untargeted DLR is
        // identically 1 near x (the ratio cancels) and its gradient truly vanishes.
        const labels = tf.tensor1d([4], 'int32');
        const targets = tf.tensor1d([0], 'int32');
        const f = (x: tf.Tensor) => tf.sum(objective(loss, model.logits(x as tf.Tensor4D), targetedMode ? targets : labels, targetedMode, labels));
        const x = tf.tensor4d(x0, [1, 1, 1, 6]);
        const g = await tf.grad(f)(x).data();
        const h = 1e-2;
        for (let i = 0; i < 6; i++) {
          const plus = Float32Array.from(x0);
          const minus = Float32Array.from(x0);
          plus[i]! += h;
          minus[i]! -= h;
          const fp = (await f(tf.tensor4d(plus, [1, 1, 1, 6])).data())[0]!;
          const fm = (await f(tf.tensor4d(minus, [1, 1, 1, 6])).data())[0]!;
          const fd = (fp - fm) / (2 * h);
          expect(Math.abs(g[i]! - fd)).toBeLessThanOrEqual(2e-2 * Math.max(1, Math.abs(fd)));
        }
        // The objective is not constant: the check above is not trivially satisfied.
        expect(Array.from(g).some((v) => Math.abs(v) > 1e-4)).toBe(true);
      });
    }
  }

  it('margin and dlr have their defining values on known logits', async () => {
    await useBackend('cpu');
    const z = tf.tensor2d([[3, 1, 0, -1, -2]]);
    const y = tf.tensor1d([1], 'int32');
    const t = tf.tensor1d([4], 'int32');
    expect((await objective('margin', z, y, false).data())[0]).toBeCloseTo(3 - 1, 6);
    expect((await objective('margin', z, t, true).data())[0]).toBeCloseTo(-2 - 3, 6);
    expect((await objective('dlr', z, y, false).data())[0]).toBeCloseTo(-(1 - 3) / (3 - 0), 6);
    expect((await objective('dlr', z, t, true, y).data())[0]).toBeCloseTo(-(1 - -2) / (3 - (0 + -1) / 2), 6);
    const ce = (await objective('ce', z, y, false).data())[0]!;
    const lse = Math.log([3, 1, 0, -1, -2].reduce((a, v) => a + Math.exp(v), 0));
    expect(ce).toBeCloseTo(lse - 1, 5);
  });
});
