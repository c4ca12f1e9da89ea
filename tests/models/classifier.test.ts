import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { fromFunction, fromLayersModel } from '../../src/models/classifier.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { relError, uniform, useBackend } from '../helpers.js';

describe('Classifier', () => {
  it('a model ending in a softmax Dense layer is attacked through its logits', async () => {
    await useBackend('wasm');
    const seq = tf.sequential({ layers: [
      tf.layers.flatten({ inputShape: [4, 4, 1] }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), biasInitializer: 'ones' }),
    ] });
    const c = fromLayersModel(seq);
    expect(c.output?.detail).toMatch(/ends in softmax/);
    expect(c.warnings).toEqual([]);
    const x = tf.tensor4d(uniform(32, 3, 0, 1), [2, 4, 4, 1]);
    const logits = c.logits(x);
    const [k, b] = seq.layers[1]!.getWeights();
    const expected = tf.add(tf.matMul(tf.reshape(x, [2, 16]), k!), b!);
    // One fused kernel (matmul + bias) against matmul then add: equal up to the last bit.
    expect(relError(await logits.data(), await expected.data())).toBeLessThanOrEqual(1e-6);
    tf.dispose([x, logits, expected]);
  });

  it('a function returning probabilities is detected by probing and log-probabilities are used', async () => {
    await useBackend('wasm');
    // A softmax the compiler cannot cut (a reshape follows it): found by probing the outputs.
    const seq = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3 }), tf.layers.softmax(), tf.layers.reshape({ targetShape: [3] })] });
    const c = fromLayersModel(seq);
    expect(c.warnings.join()).toMatch(/probabilities/);
    const plain = fromLayersModel(buildArchitecture('mlp', { inputShape: [4, 4, 1], numClasses: 3 }));
    expect(plain.warnings).toEqual([]);
  });

  it('normalization is applied inside the classifier, so inputs stay in pixel units', async () => {
    await useBackend('wasm');
    const c = fromFunction((x) => tf.reshape(x, [x.shape[0], 2]) as tf.Tensor2D, { numClasses: 2, inputShape: [1, 1, 2], normalization: { mean: [0.5, 0.25], std: [0.5, 0.25] } });
    const out = c.logits(tf.tensor4d([1, 0.5], [1, 1, 1, 2]));
    expect(Array.from(await out.data())).toEqual([1, 1]);
    out.dispose();
  });

  it('rejects bad bounds, std <= 0 and wrong channel counts with the value in the message', () => {
    const f = (x: tf.Tensor4D) => tf.reshape(x, [x.shape[0], 2]) as tf.Tensor2D;
    expect(() => fromFunction(f, { numClasses: 2, inputShape: [1, 1, 2], bounds: [1, 0] })).toThrow(/bounds must be \[lo, hi\].*\[1, 0\]/);
    expect(() => fromFunction(f, { numClasses: 2, inputShape: [1, 1, 2], normalization: { mean: 0, std: 0 } })).toThrow(/std must be > 0/);
    expect(() => fromFunction(f, { numClasses: 2, inputShape: [1, 1, 2], normalization: { mean: [0, 0, 0], std: 1 } })).toThrow(/1 or 2 values/);
  });
});
