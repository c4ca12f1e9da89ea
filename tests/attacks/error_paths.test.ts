import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { apgd, apgdT } from '../../src/attacks/apgd.js';
import { attackDataset } from '../../src/attacks/dataset.js';
import { fabT } from '../../src/attacks/fab.js';
import { fgsm } from '../../src/attacks/fgsm.js';
import { pgd } from '../../src/attacks/pgd.js';
import { square } from '../../src/attacks/square.js';
import { sweep } from '../../src/attacks/sweep.js';
import { makeDataset } from '../../src/data/dataset.js';
import { evaluateRobustness } from '../../src/eval/evaluate.js';
import { fromFunction, type Classifier } from '../../src/models/classifier.js';
import { uniform, useBackend } from '../helpers.js';
import { images, linearModel } from './fixtures.js';

beforeAll(async () => {
  await useBackend('wasm');
  inner = linearModel(shape, 3, 7);
});

const shape: [number, number, number] = [4, 4, 1];
/** A model that works for `calls` forward passes, then throws (a failing custom layer, an OOM). */
let inner: Classifier;
function failingModel(calls: number): Classifier {
  let n = 0;
  return fromFunction((x) => {
    if (n++ >= calls) throw new Error('model exploded');
    return inner.logits(x);
  }, { numClasses: 3, inputShape: shape });
}
const nanModel = fromFunction((x) => tf.mul(tf.reshape(tf.sum(x, [1, 2, 3]), [-1, 1]), tf.tensor1d([NaN, 1, 2])) as tf.Tensor2D, { numClasses: 3, inputShape: shape });
const narrowModel = fromFunction((x) => tf.reshape(tf.sum(x, [1, 2, 3]), [-1, 1]) as tf.Tensor2D, { numClasses: 3, inputShape: shape });

async function expectNoLeak(run: () => Promise<unknown>, error: RegExp): Promise<void> {
  const before = tf.memory().numTensors;
  await expect(run()).rejects.toThrow(error);
  expect(tf.memory().numTensors).toBe(before);
}

describe('error paths leak nothing and say what went wrong', () => {
  const attacks = { fgsm, pgd, apgd, apgdT, fabT, square } as const;
  for (const [name, attack] of Object.entries(attacks)) {
    it(`${name} with a model that throws mid-attack leaks no tensor`, async () => {
      const x = images(3, shape, 1);
      for (const calls of [0, 1]) await expectNoLeak(() => (attack as (m: Classifier, x: tf.Tensor4D, y: number[], o: object) => Promise<unknown>)(failingModel(calls), x, [0, 1, 2], { eps: 0.1, steps: 3, queries: 5, targets: 2 }), /model exploded/);
      x.dispose();
    });
  }

  it('labels that are not class indices, a short y, a disposed x or y, and a bad eps are refused without leaks', async () => {
    const m = inner;
    const x = images(2, shape, 2);
    await expectNoLeak(() => pgd(m, x, [0, 2.5], { eps: 0.1 }), /y\[1\] = 2.5 is not a class index/);
    await expectNoLeak(() => pgd(m, x, [0, 1], { eps: 0.1, epsilon: 0.3 } as never), /Error in pgd: unknown option "epsilon"; known: eps, norm, steps/);
    await expectNoLeak(() => square(m, x, [0, 1], { eps: 0.1, querys: 10 } as never), /Error in square: unknown option "querys"/);
    await expectNoLeak(() => pgd(m, x, [0, NaN], { eps: 0.1 }), /y\[1\] = NaN is not a class index/);
    await expectNoLeak(() => pgd(m, x, undefined as never, { eps: 0.1 }), /y must be a 1-D tensor or an array of class indices, but got undefined/);
    const y = tf.tensor1d([0, 1], 'int32');
    y.dispose();
    await expectNoLeak(() => fgsm(m, x, y, { eps: 0.1 }), /y is a disposed tensor/);
    await expectNoLeak(() => sweep(pgd, m, x, [0], { epsilons: [0.1] }), /y has 1 labels but x has 2 images/);
    await expectNoLeak(() => sweep(pgd, m, x, [0, 1], { epsilons: [0.1, NaN] }), /epsilons\[1\] must be a finite number/);
    x.dispose();
    await expectNoLeak(() => fgsm(m, x, [0, 1], { eps: 0.1 }), /x is a disposed tensor/);
  });

  it('unknown option names of the evaluator and attackDataset are refused with the known ones', async () => {
    const ds = makeDataset('d', uniform(2 * 16, 3, 0, 1), Int32Array.from([0, 1]), shape, ['a', 'b', 'c']);
    await expectNoLeak(() => evaluateRobustness(inner, ds, { attacks: [{ name: 'fgsm' }], epsilons: [0.1], cascde: false } as never), /Error in evaluateRobustness: unknown option "cascde"; known: attacks, preset, epsilons/);
    await expectNoLeak(async () => { for await (const b of attackDataset(fgsm, inner, ds, { eps: 0.1 }, { batchsize: 2 } as never)) tf.dispose([b.x, b.result.adversarial]); }, /Error in attackDataset: unknown option "batchsize"; known: batchSize, from/);
  });

  it('NaN logits and logits with fewer columns than numClasses are refused at the first forward pass', async () => {
    const ds = makeDataset('d', uniform(6 * 16, 3, 0, 1), Int32Array.from([0, 1, 2, 0, 1, 2]), shape, ['a', 'b', 'c']);
    for (const [model, error] of [[nanModel, /NaN or infinite logits/], [narrowModel, /logits of shape \[6, 1\] for 6 images, not \[6, 3\]/]] as const) {
      await expectNoLeak(() => evaluateRobustness(model, ds, { attacks: [{ name: 'fgsm' }], epsilons: [0.1], checks: false }), error);
      await expectNoLeak(async () => { for await (const b of attackDataset(fgsm, model, ds, { eps: 0.1 })) tf.dispose([b.x, b.result.adversarial]); }, error);
    }
  });
});
