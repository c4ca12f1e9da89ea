/**
 * The minimum-norm family (DeepFool, Carlini–Wagner, EAD, FMN, with FAB-T beside them):
 * against closed forms on a two-class linear model, where the distance to the boundary is
 * known exactly in every norm; re-checked results; targets reached; the ball, the bounds,
 * determinism and leaks (fast-check); batch independence; refusals.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { cw, deepfool, ead, fabT, fmn, square } from '../../src/attacks/index.js';
import type { AttackResult } from '../../src/attacks/gradient_descent.js';
import { attackNorms, type AttackName } from '../../src/attacks/registry.js';
import { evaluateRobustness } from '../../src/eval/evaluate.js';
import { loadMnist, take } from '../../src/data/index.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { fromFunction, fromLayersModel, type Classifier } from '../../src/models/classifier.js';
import type { NormName } from '../../src/util/norms.js';
import { uniform, useBackend } from '../helpers.js';
import { assertBallProperty, images, linearModel } from './fixtures.js';

const D = 16;
const SHAPE: [number, number, number] = [4, 4, 1];

/**
 * logits = x·A + B with two classes, images in [0.45, 0.55] (far from the bounds), and per sample
 * the exact distances to the boundary: |f|/‖w‖₂ (L2), |f|/‖w‖₁ (L∞) and the fractional knapsack
 * over coordinates by |w_i|, each up to its bound (L1), where f = z_y − z_o and w = ∇(z_o − z_y).
 */
function twoClass(n: number, seed: number) {
  const a = uniform(D * 2, seed);
  const b = [0.4, -0.4];
  const at = tf.keep(tf.tensor2d(a, [D, 2]));
  const bt = tf.keep(tf.tensor1d(b));
  const model = fromFunction((x) => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], D]), at), bt) as tf.Tensor2D, { numClasses: 2, inputShape: SHAPE });
  const xs = uniform(n * D, seed + 1, 0.45, 0.55);
  const labels: number[] = [];
  const exact = { l2: [] as number[], linf: [] as number[], l1: [] as number[] };
  for (let s = 0; s < n; s++) {
    const z = [0, 1].map((k) => b[k]! + Array.from({ length: D }, (_, i) => xs[s * D + i]! * a[i * 2 + k]!).reduce((p, q) => p + q, 0));
    const y = z[0]! >= z[1]! ? 0 : 1;
    const o = 1 - y;
    labels.push(y);
    const w = Array.from({ length: D }, (_, i) => a[i * 2 + o]! - a[i * 2 + y]!);
    const f = z[y]! - z[o]!;
    const n2 = Math.sqrt(w.reduce((p, v) => p + v * v, 0));
    const n1 = w.reduce((p, v) => p + Math.abs(v), 0);
    // The closed forms hold where the bounds do not bind.
    for (let i = 0; i < D; i++) {
      const room = w[i]! > 0 ? 1 - xs[s * D + i]! : xs[s * D + i]!;
      expect(Math.abs((f * w[i]!) / (n2 * n2))).toBeLessThan(room);
      expect(f / n1).toBeLessThan(room);
    }
    exact.l2.push(f / n2);
    exact.linf.push(f / n1);
    let need = f;
    let cost = 0;
    for (const i of w.map((_, i) => i).sort((p, q) => Math.abs(w[q]!) - Math.abs(w[p]!))) {
      const room = w[i]! > 0 ? 1 - xs[s * D + i]! : xs[s * D + i]!;
      const gain = Math.abs(w[i]!) * room;
      if (gain >= need) { cost += need / Math.abs(w[i]!); break; }
      cost += room;
      need -= gain;
    }
    exact.l1.push(cost);
  }
  return { model, x: tf.tensor4d(xs, [n, ...SHAPE]), labels, exact };
}

const ratios = (r: AttackResult, ref: number[]) => Array.from(r.minimumNorm!, (v, i) => v / ref[i]!);

describe('the minimum-norm attacks against closed forms (two-class linear model)', () => {
  it('DeepFool lands (1 + overshoot) past the exact distance in one step, in L2, L∞ and L1', async () => {
    await useBackend('cpu');
    const { model, x, labels, exact } = twoClass(6, 3);
    for (const norm of ['l2', 'linf', 'l1'] as const) {
      const r = await deepfool(model, x, labels, { eps: 10, norm, overshoot: 0.02 });
      // Under L1 the step saturates coordinates at their bounds, where the overshoot is clipped.
      for (const q of ratios(r, exact[norm])) {
        expect(q).toBeGreaterThan(norm === 'l1' ? 1 - 1e-4 : 1.02 * (1 - 1e-4));
        expect(q).toBeLessThan(1.02 * 1.002);
      }
      expect(Array.from(r.success)).toEqual(labels.map(() => 1));
      r.adversarial.dispose();
    }
    x.dispose();
  });

  it('FMN (every norm), FAB-T (L2, L∞) and Carlini–Wagner (L2) reach the exact distance from above', async () => {
    await useBackend('cpu');
    const { model, x, labels, exact } = twoClass(6, 5);
    const runs: Array<[string, 'linf' | 'l2' | 'l1', Promise<AttackResult>, number]> = [];
    for (const norm of ['l2', 'linf', 'l1'] as const) runs.push([`fmn ${norm}`, norm, fmn(model, x, labels, { eps: 10, norm }), norm === 'l1' ? 1.01 : 1.001]);
    for (const norm of ['l2', 'linf'] as const) runs.push([`fab ${norm}`, norm, fabT(model, x, labels, { eps: 10, norm }), 1.001]);
    // Carlini–Wagner's resolution is Adam's step in w (learningRate) and the binary search over c.
    runs.push(['cw', 'l2', cw(model, x, labels, { eps: 10 }), 1.1]);
    for (const [name, norm, p, slack] of runs) {
      const r = await p;
      for (const q of ratios(r, exact[norm])) {
        expect(q, name).toBeGreaterThan(1 - 1e-4);
        expect(q, name).toBeLessThan(slack);
      }
      r.adversarial.dispose();
    }
    x.dispose();
  });

  it('EAD never beats the exact L1 distance, and its L1 rule keeps points no farther in L1 than the elastic-net rule', async () => {
    await useBackend('cpu');
    const { model, x, labels, exact } = twoClass(6, 7);
    const en = await ead(model, x, labels, { eps: 10 });
    const byL1 = await ead(model, x, labels, { eps: 10, decisionRule: 'l1' });
    ratios(en, exact.l1).forEach((q) => expect(q).toBeGreaterThan(1 - 1e-4));
    ratios(byL1, exact.l1).forEach((q, i) => {
      expect(q).toBeGreaterThan(1 - 1e-4);
      expect(byL1.minimumNorm![i]!).toBeLessThanOrEqual(en.minimumNorm![i]! * (1 + 1e-6));
    });
    expect(Array.from(en.success)).toEqual(labels.map(() => 1));
    tf.dispose([en.adversarial, byL1.adversarial, x]);
  });
});

type Run = (m: Classifier, x: tf.Tensor4D, y: number[], o: { eps: number; norm: NormName; seed: number }) => Promise<AttackResult>;
const FAMILY: Record<'deepfool' | 'cw' | 'ead' | 'fmn', Run> = {
  deepfool: (m, x, y, o) => deepfool(m, x, y, { ...o, steps: 10 }),
  cw: (m, x, y, o) => cw(m, x, y, { ...o, steps: 20, binarySteps: 4, initialConst: 1, learningRate: 0.1 }),
  ead: (m, x, y, o) => ead(m, x, y, { ...o, steps: 20, binarySteps: 4, initialConst: 1, learningRate: 0.1 }),
  fmn: (m, x, y, o) => fmn(m, x, y, { ...o, steps: 15 }),
};

for (const [name, attack] of Object.entries(FAMILY)) {
  for (const norm of attackNorms(name as AttackName)) {
    describe(`${name} ${norm}`, () => {
      it('stays inside the eps-ball and the bounds, is deterministic for a seed and leaks no tensors', async () => {
        await useBackend('wasm');
        await assertBallProperty(attack, norm, { numRuns: 5, smooth: true, maxSide: 4, maxClasses: 5 });
      });

      it('re-checks its result: a distance within eps is a success whose norms are the distance; the rest is projected into the ball', async () => {
        await useBackend('cpu');
        const model = linearModel([3, 3, 2], 5, 4);
        const x = images(6, [3, 3, 2], 5);
        const y = Array.from(await tf.tidy(() => tf.argMax(model.logits(x), 1)).data());
        const loose = await attack(model, x, y, { eps: 1e6, norm, seed: 2 });
        expect(Array.from(loose.minimumNorm!).every(Number.isFinite)).toBe(true);
        const pred = await tf.tidy(() => tf.argMax(model.logits(loose.adversarial), 1)).data();
        loose.minimumNorm!.forEach((d, i) => {
          expect(loose.success[i]).toBe(1);
          expect(pred[i]).not.toBe(y[i]);
          expect(loose.norms[norm][i]).toBeCloseTo(d, 5);
        });
        // With eps below each distance the result is inside the ball and the same minimumNorm.
        const eps = Math.min(...loose.minimumNorm!) / 2;
        const tight = await attack(model, x, y, { eps, norm, seed: 2 });
        expect(Array.from(tight.minimumNorm!)).toEqual(Array.from(loose.minimumNorm!));
        tight.norms[norm].forEach((d) => expect(d).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-7));
        tf.dispose([loose.adversarial, tight.adversarial, x]);
      });

      it("gives each sample the result it gets alone: a batch's rows equal the rows attacked as a smaller batch", async () => {
        await useBackend('wasm');
        const model = linearModel([3, 3, 1], 4, 9, true);
        const x = images(5, [3, 3, 1], 10);
        const y = [0, 1, 2, 3, 1];
        const all = await attack(model, x, y, { eps: 100, norm, seed: 3 });
        const part = tf.gather(x, [3, 1]);
        const some = await attack(model, part, [3, 1], { eps: 100, norm, seed: 3 });
        const [a, s] = await Promise.all([all.adversarial.data(), some.adversarial.data()]);
        for (const [j, i] of [3, 1].entries()) {
          expect(some.minimumNorm![j]).toBeCloseTo(all.minimumNorm![i]!, 5);
          for (let k = 0; k < 9; k++) expect(Math.abs(s[j * 9 + k]! - a[i * 9 + k]!)).toBeLessThanOrEqual(1e-5);
        }
        tf.dispose([all.adversarial, some.adversarial, part, x]);
      });
    });
  }
}

describe('FMN under L0', () => {
  it('changes as few values as the closed form needs on a two-class linear model, and its count is the values changed', async () => {
    await useBackend('cpu');
    const { model, x, labels } = twoClass(4, 9);
    const r = await fmn(model, x, labels, { eps: D, norm: 'l0', steps: 100 });
    const [a, xs] = await Promise.all([r.adversarial.data(), x.data()]);
    for (let s = 0; s < 4; s++) {
      let changed = 0;
      for (let i = 0; i < D; i++) if (a[s * D + i] !== xs[s * D + i]) changed++;
      expect(r.minimumNorm![s]).toBe(changed);
      expect(r.norms.l0[s]).toBe(changed);
      expect(r.success[s]).toBe(1);
      expect(changed).toBeGreaterThanOrEqual(1);
    }
    // A budget below the count is a projection keeping the largest changes.
    const tight = await fmn(model, x, labels, { eps: 1, norm: 'l0', steps: 100 });
    tight.norms.l0.forEach((c) => expect(c).toBeLessThanOrEqual(1));
    tf.dispose([r.adversarial, tight.adversarial, x]);
  });
});

describe('targeted minimum-norm attacks', () => {
  it('Carlini–Wagner, EAD and FMN reach the class asked for', async () => {
    await useBackend('cpu');
    const model = linearModel([3, 3, 1], 5, 12);
    const x = images(5, [3, 3, 1], 13);
    const y = Array.from(await tf.tidy(() => tf.argMax(model.logits(x), 1)).data());
    const targets = y.map((v) => (v + 2) % 5);
    const goal = { kind: 'targeted' as const, labels: targets };
    for (const [name, r] of [
      ['cw', await cw(model, x, y, { eps: 100, goal, binarySteps: 5, steps: 100, initialConst: 1, learningRate: 0.1 })],
      ['ead', await ead(model, x, y, { eps: 100, goal, binarySteps: 5, steps: 100, initialConst: 1, learningRate: 0.1 })],
      ['fmn l2', await fmn(model, x, y, { eps: 100, norm: 'l2', goal })],
      ['fmn linf', await fmn(model, x, y, { eps: 100, norm: 'linf', goal })],
    ] as const) {
      expect(Array.from(r.predictions), name).toEqual(targets);
      expect(Array.from(r.success), name).toEqual(targets.map(() => 1));
      expect(Array.from(r.minimumNorm!).every(Number.isFinite), name).toBe(true);
      r.adversarial.dispose();
    }
    x.dispose();
  });
});

describe('refusals', () => {
  it('each attack refuses a norm or goal it has no form for, in one line naming what to use', async () => {
    await useBackend('cpu');
    const model = linearModel([2, 2, 1], 3, 1);
    const x = images(1, [2, 2, 1], 2);
    await expect(cw(model, x, [0], { eps: 1, norm: 'linf' })).rejects.toThrow(/^Error in cw: Carlini–Wagner here is the L2 attack, but got norm "linf"; use ead for L1, or fmn or deepfool for L∞\.$/);
    await expect(ead(model, x, [0], { eps: 1, norm: 'l2' })).rejects.toThrow(/^Error in ead: EAD is the L1 attack, but got norm "l2"; use cw for L2/);
    await expect(deepfool(model, x, [0], { eps: 1, goal: { kind: 'targeted', labels: [1] } })).rejects.toThrow(/^Error in deepfool: DeepFool is untargeted/);
    await expect(square(model, x, [0], { eps: 1, norm: 'l1' })).rejects.toThrow(/^Error in square: norm 'l1' has no Square proposal/);
    await expect(fmn(model, x, [0], { eps: 1, norm: 'l3' as never })).rejects.toThrow(/norm must be one of linf, l2, l1, l0, but got "l3"/);
    await expect(deepfool(model, x, [0], { eps: 1, norm: 'l0' })).rejects.toThrow(/norm must be one of linf, l2, l1, but got "l0" \(L0 is a count of changed values; fmn takes it\)/);
    await expect(ead(model, x, [0], { eps: 1, decisionRule: 'l2' as never })).rejects.toThrow(/decisionRule must be one of en, l1, but got "l2"/);
    await expect(cw(model, x, [0], { eps: 1, binarySteps: 0 })).rejects.toThrow(/binarySteps must be >= 1, but got 0/);
    x.dispose();
  });

  it('the evaluator refuses an attack under a norm it does not run under, before attacking', async () => {
    await useBackend('cpu');
    const model = fromLayersModel(buildArchitecture('mlp', { seed: 1 }));
    const ds = take(loadMnist('test'), 4);
    await expect(evaluateRobustness(model, ds, { attacks: [{ name: 'cw', options: {} }], epsilons: [0.1], norm: 'linf', checks: false })).rejects.toThrow(/cw runs under l2 only, not linf; the attacks for linf: .*fmn/);
    await expect(evaluateRobustness(model, ds, { attacks: [{ name: 'square', options: {} }], epsilons: [1], norm: 'l1', checks: false })).rejects.toThrow(/square runs under linf or l2 only, not l1/);
  });
});
