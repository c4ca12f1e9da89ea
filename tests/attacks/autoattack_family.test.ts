/**
 * APGD, APGD-T and FAB-T against mathematics: closed forms on linear models, the step-size
 * schedule, properties on random models (fast-check), batch and worker independence.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { apgd, apgdCheckpoints, apgdT } from '../../src/attacks/apgd.js';
import { attackDataset } from '../../src/attacks/dataset.js';
import { fabT } from '../../src/attacks/fab.js';
import { square } from '../../src/attacks/square.js';
import { l2, linf } from '../../src/attacks/lp.js';
import { ATTACKS, attackNorms, type AttackName } from '../../src/attacks/registry.js';
import type { NormName } from '../../src/util/norms.js';
import type { AttackResult } from '../../src/attacks/gradient_descent.js';
import { loadMnist, subset, take } from '../../src/data/index.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { fromFunction, fromLayersModel, type Classifier } from '../../src/models/classifier.js';
import { uniform, useBackend } from '../helpers.js';
import { assertBallProperty, images, linearModel } from './fixtures.js';

/** Two classes: z_0 = 0, z_1 = w·x + b, so the boundary is w·x + b = 0. */
function twoClassLinear(d: number, seed: number, b: number): { model: Classifier; w: Float32Array; b: number } {
  const w = uniform(d, seed);
  const W = tf.keep(tf.tensor2d(Array.from(w).flatMap((v) => [0, v]), [d, 2]));
  const bias = tf.keep(tf.tensor1d([0, b]));
  return { model: fromFunction((x) => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], d]), W), bias) as tf.Tensor2D, { numClasses: 2, inputShape: [1, 1, d] }), w, b };
}

describe('APGD step-size checkpoints', () => {
  it("follow the paper's schedule for 100 steps: 22, then windows 3 shorter down to 6", () => {
    expect([...apgdCheckpoints(100).keys()]).toEqual([22, 41, 57, 70, 80, 87, 93, 99]);
    expect([...apgdCheckpoints(100).values()]).toEqual([22, 19, 16, 13, 10, 7, 6, 6]);
  });
  it('exist for any budget and stay inside it', () => {
    for (const steps of [1, 2, 5, 10, 37, 250]) {
      const at = [...apgdCheckpoints(steps).keys()];
      for (const a of at) expect(a).toBeLessThan(steps);
      for (let i = 1; i < at.length; i++) expect(at[i]!).toBeGreaterThan(at[i - 1]!);
    }
  });
});

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`closed forms on ${backend}`, () => {
    for (const norm of ['linf', 'l2'] as const) {
      it(`FAB-T finds the exact minimum ${norm} distance |w·x + b| / ‖w‖${norm === 'l2' ? '₂' : '₁'} of a linear two-class model`, async () => {
        await useBackend(backend);
        const d = 24;
        const { model, w, b } = twoClassLinear(d, 3, 0.05);
        const xs = uniform(4 * d, 4, 0.35, 0.65);
        const x = tf.tensor4d(xs, [4, 1, 1, d]);
        const f = (s: number) => w.reduce((a, v, i) => a + v * xs[s * d + i]!, b);
        const labels = [0, 1, 2, 3].map((s) => (f(s) > 0 ? 1 : 0));
        const dual = norm === 'l2' ? Math.hypot(...w) : w.reduce((a, v) => a + Math.abs(v), 0);
        const before = tf.memory().numTensors;
        const r = await fabT(model, x, labels, { eps: 1, norm, steps: 30 });
        for (let s = 0; s < 4; s++) {
          const exact = Math.abs(f(s)) / dual;
          expect(r.success[s]).toBe(1);
          expect(Math.abs(r.minimumNorm![s]! - exact) / exact).toBeLessThan(2e-3);
          expect(r.minimumNorm![s]!).toBeGreaterThanOrEqual(exact * (1 - 1e-4));
        }
        r.adversarial.dispose();
        expect(tf.memory().numTensors).toBe(before);
        x.dispose();
      });

      it(`APGD-CE reaches the decision boundary of a linear model when it lies inside the ${norm} ball, and not when it lies outside`, async () => {
        await useBackend(backend);
        const d = 24;
        const { model, w, b } = twoClassLinear(d, 5, -0.02);
        const xs = uniform(4 * d, 6, 0.35, 0.65);
        const x = tf.tensor4d(xs, [4, 1, 1, d]);
        const f = (s: number) => w.reduce((a, v, i) => a + v * xs[s * d + i]!, b);
        const labels = [0, 1, 2, 3].map((s) => (f(s) > 0 ? 1 : 0));
        const dual = norm === 'l2' ? Math.hypot(...w) : w.reduce((a, v) => a + Math.abs(v), 0);
        const dist = [0, 1, 2, 3].map((s) => Math.abs(f(s)) / dual);
        const inside = await apgd(model, x, labels, { eps: Math.max(...dist) * 1.02, norm, steps: 20 });
        expect(Array.from(inside.success)).toEqual([1, 1, 1, 1]);
        const outside = await apgd(model, x, labels, { eps: Math.min(...dist) * 0.98, norm, steps: 20 });
        expect(Array.from(outside.success)).toEqual([0, 0, 0, 0]);
        tf.dispose([inside.adversarial, outside.adversarial, x]);
      });
    }

    it('the box-constrained hyperplane projections are the minimum-norm solutions (checked against a dense search)', async () => {
      await useBackend(backend);
      const d = 6;
      for (const [norm, dist] of [[linf, (v: number[]) => Math.max(...v.map(Math.abs))], [l2, (v: number[]) => Math.hypot(...v)]] as const) {
        const p = uniform(d, 9, 0, 1);
        const w = uniform(d, 10);
        const c = 0.4;
        const delta = Array.from(await norm.toHyperplane(tf.tensor2d(p, [1, d]), tf.tensor2d(w, [1, d]), tf.tensor1d([c]), [0, 1]).data());
        expect(delta.reduce((a, v, i) => a + v * w[i]!, 0)).toBeCloseTo(c, 4);
        delta.forEach((v, i) => { expect(p[i]! + v).toBeGreaterThanOrEqual(-1e-6); expect(p[i]! + v).toBeLessThanOrEqual(1 + 1e-6); });
        // No feasible point found by random search is closer.
        const best = dist(delta);
        let rng = 1;
        const rand = () => ((rng = (rng * 16807) % 2147483647) / 2147483647);
        for (let t = 0; t < 4000; t++) {
          const q = Array.from({ length: d }, (_, i) => -p[i]! + rand());
          const k = t % d;
          if (Math.abs(w[k]!) < 1e-3) continue;
          const rest = q.reduce((a, v, i) => (i === k ? a : a + v * w[i]!), 0);
          q[k] = (c - rest) / w[k]!;
          if (p[k]! + q[k]! < 0 || p[k]! + q[k]! > 1) continue;
          expect(dist(q)).toBeGreaterThanOrEqual(best - 1e-4);
        }
      }
    });
  });
}

type AnyAttack = (m: Classifier, x: tf.Tensor4D, y: number[], o: { eps: number; norm: NormName; seed: number }) => Promise<AttackResult>;
const FAMILY: Record<string, AnyAttack> = {
  'apgd-ce': (m, x, y, o) => apgd(m, x, y, { ...o, steps: 6, restarts: 2 }),
  'apgd-dlr': (m, x, y, o) => apgd(m, x, y, { ...o, steps: 6, loss: 'dlr' }),
  'apgd-t': (m, x, y, o) => apgdT(m, x, y, { ...o, steps: 5, targets: 3 }),
  'fab-t': (m, x, y, o) => fabT(m, x, y, { ...o, steps: 5, targets: 2, restarts: 2 }),
  square: (m, x, y, o) => square(m, x, y, { ...o, queries: 25, pInit: 0.8 }),
};

for (const backend of ['wasm', 'cpu'] as const) {
  for (const [name, attack] of Object.entries(FAMILY)) {
    for (const norm of attackNorms(name as AttackName)) {
      describe(`${name} ${norm} on ${backend}`, () => {
        it('stays inside the eps-ball and the bounds, is deterministic for a seed and leaks no tensors', async () => {
          await useBackend(backend);
          await assertBallProperty(attack, norm, { numRuns: 6, smooth: true, maxSide: 4, maxClasses: 6 });
        });

        it('eps = 0 returns the input, byte for byte', async () => {
          await useBackend(backend);
          const model = linearModel([3, 3, 1], 4, 8, true);
          const x = images(2, [3, 3, 1], 9);
          const r = await attack(model, x, [0, 1], { eps: 0, norm, seed: 1 });
          const [a, xs] = await Promise.all([r.adversarial.data(), x.data()]);
          expect(Buffer.from(a.buffer).equals(Buffer.from(xs.buffer))).toBe(true);
          expect(Array.from(r.success)).toEqual([0, 0].map((_, s) => (r.predictions[s] !== [0, 1][s] ? 1 : 0)));
          tf.dispose([r.adversarial, x]);
        });
      });
    }
  }
}

describe('APGD, APGD-T and FAB-T over a data set', () => {
  it("give each example the same result whatever its batch, on the MLP (seeds come from example ids)", async () => {
    await useBackend('wasm');
    const model = fromLayersModel(buildArchitecture('mlp', { seed: 2 }));
    const ds = take(loadMnist('test'), 12);
    for (const name of ['apgd-ce', 'apgd-t', 'fab-t'] as const) {
      const collect = async (d: typeof ds, batchSize: number) => {
        const out = new Map<number, { adv: Float32Array; min?: number }>();
        for await (const b of attackDataset(ATTACKS[name] as never, model, d, { eps: 0.1, steps: 5, targets: 2, seed: 3 } as never, { batchSize })) {
          const adv = await b.result.adversarial.data();
          for (let k = 0; k < b.end - b.start; k++) out.set(d.ids[b.start + k]!, { adv: Float32Array.from(adv.subarray(k * 784, (k + 1) * 784)), min: b.result.minimumNorm?.[k] });
          tf.dispose([b.x, b.result.adversarial]);
        }
        return out;
      };
      const before = tf.memory().numTensors;
      const all = await collect(ds, 12);
      const some = await collect(subset(ds, [11, 3, 7, 0]), 3);
      expect(tf.memory().numTensors).toBe(before);
      for (const [id, r] of some) {
        const ref = all.get(id)!;
        let diff = 0;
        r.adv.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - ref.adv[i]!)); });
        expect(diff, `${name} example ${id}`).toBeLessThan(1e-5);
        if (name === 'fab-t') expect(Math.abs((r.min ?? 0) - (ref.min ?? 0)) <= 1e-5 || r.min === ref.min).toBe(true);
      }
    }
  });
});
