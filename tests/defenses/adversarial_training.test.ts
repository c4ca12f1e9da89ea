import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadMnist, take } from '../../src/data/index.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { trainClassifier } from '../../src/defenses/train.js';
import { fromLayersModel } from '../../src/models/classifier.js';
import { pgd } from '../../src/attacks/pgd.js';
import { rampedEps, validateAdversarial } from '../../src/defenses/adversarial_training.js';
import { useBackend } from '../helpers.js';
import { expectUsageError } from '../cli/run.js';

describe('adversarial training', () => {
  it('makes the model more robust under PGD than natural training on the same data, records the PGD check and leaks nothing', async () => {
    await useBackend('wasm');
    const train = take(loadMnist('train'), 1500);
    const test = take(loadMnist('test'), 200);
    const opts = { epochs: 3, batchSize: 32, seed: 3, validation: test, robustCheck: { examples: 200, steps: 10 } } as const;
    const before = tf.memory().numTensors;
    const adv = buildArchitecture('mlp', { seed: 1 });
    const robust = await trainClassifier(adv, train, { ...opts, adversarial: { method: 'pgd', eps: 0.1, steps: 5 } });
    const tr = buildArchitecture('mlp', { seed: 1 });
    const trades = await trainClassifier(tr, train, { ...opts, adversarial: { method: 'trades', eps: 0.1, steps: 5, beta: 6 } });
    const plain = buildArchitecture('mlp', { seed: 1 });
    const plainRun = await trainClassifier(plain, train, { ...opts });
    const last = robust.history[robust.history.length - 1]!;
    expect(last.eps).toBe(0.1);
    expect(last.valAccuracy!).toBeGreaterThan(0.6);
    expect(plainRun.history[2]!.valRobustAccuracy).toBeUndefined();
    // The same PGD-10 check on the naturally trained model, by the library's attack.
    const x = tf.tensor4d(test.images, [200, 28, 28, 1]);
    const r = await pgd(fromLayersModel(plain), x, test.labels, { eps: 0.1, steps: 10, seed: 3 });
    const plainRobust = Array.from(r.predictions).filter((p, i) => p === test.labels[i]).length / 200;
    tf.dispose([x, r.adversarial]);
    expect(last.valRobustAccuracy!).toBeGreaterThan(plainRobust + 0.1);
    expect(trades.history[2]!.valRobustAccuracy!).toBeGreaterThan(plainRobust + 0.1);
    tr.dispose();
    adv.dispose();
    plain.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('ramps eps linearly and rejects bad settings with the value in the message', () => {
    const a = validateAdversarial('t', { method: 'fgsm-rs', eps: 0.3, rampEpochs: 2 });
    expect(rampedEps(a, 0.5)).toBeCloseTo(0.075, 10);
    expect(rampedEps(a, 5)).toBe(0.3);
    expect(() => validateAdversarial('t', { method: 'free' as never, eps: 0.3 })).toThrow(/method must be one of fgsm-rs, pgd, trades, but got "free"/);
    expect(() => validateAdversarial('t', { method: 'trades', eps: 0.3, beta: -1 })).toThrow(/adversarial.beta must be >= 0, but got -1/);
    expect(() => validateAdversarial('t', { method: 'pgd', eps: 0 })).toThrow(/adversarial.eps must be > 0, but got 0/);
  });

  it('advkit train --adv needs --eps, and --eps needs --adv', () => {
    expectUsageError(['train', '--arch', 'mlp', '--data', 'mnist', '--adv', 'pgd', '--out', '/tmp/advkit-x'], /--adv needs the training radius/);
    expectUsageError(['train', '--arch', 'mlp', '--data', 'mnist', '--eps', '0.3', '--out', '/tmp/advkit-x'], /go with --adv/);
  });
});
