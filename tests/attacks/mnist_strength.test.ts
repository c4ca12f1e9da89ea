import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { fgsm, pgd, sweep } from '../../src/attacks/index.js';
import { loadMnist, take } from '../../src/data/index.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { fromLayersModel, type Classifier } from '../../src/models/classifier.js';
import { trainClassifier } from '../../src/defenses/train.js';
import { useBackend } from '../helpers.js';

let model: Classifier;
let x: tf.Tensor4D;
let y: Int32Array;

beforeAll(async () => {
  await useBackend('wasm');
  const net = buildArchitecture('mnist-cnn', { seed: 1 });
  await trainClassifier(net, take(loadMnist('train'), 3000), { epochs: 2, batchSize: 32, seed: 1, shift: 0 });
  model = fromLayersModel(net);
  const test = take(loadMnist('test'), 64);
  x = tf.tensor4d(test.images, [64, 28, 28, 1]);
  y = test.labels;
});

const count = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);

describe('attacks on a naturally trained mnist-cnn', () => {
  it('is accurate before the attack (the fixture is a real model)', async () => {
    const pred = await tf.argMax(model.logits(x), 1).data();
    expect(Array.from(pred).filter((p, i) => p === y[i]).length / 64).toBeGreaterThan(0.85);
  });

  it('robust accuracy never rises with eps, and eps = 0.3 PGD leaves almost nothing', async () => {
    const before = tf.memory().numTensors;
    const s = await sweep(pgd, model, x, y, { epsilons: [0, 0.05, 0.1, 0.2, 0.3], steps: 10, seed: 2 });
    for (let i = 1; i < s.robustAccuracy.length; i++) expect(s.robustAccuracy[i]!).toBeLessThanOrEqual(s.robustAccuracy[i - 1]!);
    expect(s.robustAccuracy[4]!).toBeLessThanOrEqual(0.05);
    expect(s.robustAccuracy[0]!).toBeGreaterThan(0.85);
    tf.dispose(s.adversarials);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('PGD is at least as strong as FGSM at the same eps', async () => {
    for (const eps of [0.05, 0.1]) {
      const f = await fgsm(model, x, y, { eps });
      const p = await pgd(model, x, y, { eps, steps: 10, seed: 1 });
      expect(count(p.success)).toBeGreaterThanOrEqual(count(f.success));
      tf.dispose([f.adversarial, p.adversarial]);
    }
  });

  it('targeted PGD reaches its targets', async () => {
    const targets = Int32Array.from(y, (l) => (l + 1) % 10);
    const r = await pgd(model, x, y, { eps: 0.3, steps: 20, goal: { kind: 'targeted', labels: targets }, seed: 3 });
    // Clean inputs hit these targets almost never; the attack hits most of them (on this
    // small-budget model a few pairs such as 0->1 stay out of reach at eps 0.3 on cpu too).
    const clean = await tf.argMax(model.logits(x), 1).data();
    expect(Array.from(clean).filter((p, i) => p === targets[i]).length / 64).toBeLessThan(0.1);
    expect(count(r.success) / 64).toBeGreaterThan(0.75);
    r.predictions.forEach((p, i) => expect(r.success[i] === 1).toBe(p === targets[i]));
    r.adversarial.dispose();
  });

  it('restarts only add successes, and early stopping keeps every sample it fooled', async () => {
    const eps = 0.08;
    const one = await pgd(model, x, y, { eps, steps: 5, seed: 4 });
    const three = await pgd(model, x, y, { eps, steps: 5, seed: 4, restarts: 3 });
    one.success.forEach((s, i) => { if (s) expect(three.success[i]).toBe(1); });
    const es = await pgd(model, x, y, { eps, steps: 5, seed: 4, earlyStop: true });
    one.success.forEach((s, i) => { if (s) expect(es.success[i]).toBe(1); });
    expect(count(es.success)).toBeGreaterThanOrEqual(count(one.success));
    tf.dispose([one.adversarial, three.adversarial, es.adversarial]);
  });
});

describe('attack input checks name the attack, the argument and the value', () => {
  const call = (o: Record<string, unknown>, xx: tf.Tensor4D = x, yy: ArrayLike<number> = y) =>
    pgd(model, xx, yy, { eps: 0.1, steps: 2, ...o } as never);
  it('eps < 0 or NaN', async () => {
    await expect(call({ eps: -0.1 })).rejects.toThrow(/Error in pgd: eps must be >= 0, but got -0.1/);
    await expect(call({ eps: Number.NaN })).rejects.toThrow(/Error in pgd: eps must be a finite number, but got NaN/);
  });
  it('steps = 0', async () => {
    await expect(call({ steps: 0 })).rejects.toThrow(/steps must be >= 1, but got 0/);
  });
  it('labels out of range and a label/batch length mismatch', async () => {
    await expect(call({}, x, Int32Array.from(y).fill(10, 3, 4))).rejects.toThrow(/y\[3\] = 10 is not a class of this model \(0..9\)/);
    await expect(call({}, x, y.slice(0, 5))).rejects.toThrow(/y has 5 labels but x has 64 images/);
  });
  it('inputs outside the bounds', async () => {
    const bad = tf.mul(x, 2) as tf.Tensor4D;
    await expect(call({}, bad)).rejects.toThrow(/outside the model's bounds \[0, 1\]/);
    bad.dispose();
  });
  it('a model whose input shape differs from the data shows both shapes', async () => {
    const small = tf.zeros([2, 14, 14, 1]) as tf.Tensor4D;
    await expect(call({}, small, [0, 1])).rejects.toThrow(/x has images of shape \[14, 14, 1\] but the model takes \[28, 28, 1\]/);
    small.dispose();
  });
});
