import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { buildArchitecture } from '../../src/models/architectures.js';
import { onBackend, relError, uniform } from '../helpers.js';

/**
 * Whole-model parity: the input gradient and every weight gradient of the cross-entropy loss,
 * computed on wasm (advkit's kernels) and on the cpu backend, agree to 1e-4 relative error.
 */
function modelGrads(arch: string, shape: [number, number, number], n: number) {
  return () => {
    const model = buildArchitecture(arch, { inputShape: shape, numClasses: 10, seed: 3 });
    const x = tf.tensor4d(uniform(n * shape[0] * shape[1] * shape[2], 11, 0, 1), [n, ...shape]);
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % 10), 'int32'), 10);
    const loss = (xx: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, model.apply(xx, { training: false }) as tf.Tensor) as tf.Scalar;
    const dx = tf.grad(loss)(x);
    const { grads } = tf.variableGrads(() => loss(x));
    const out = [dx, ...model.trainableWeights.map((w) => grads[w.originalName] ?? grads[w.name]!)];
    model.dispose();
    return out;
  };
}

describe('whole-model gradients on wasm match the cpu backend', () => {
  const cases: Array<[string, [number, number, number]]> = [
    ['mnist-cnn', [28, 28, 1]], ['madry-cnn', [28, 28, 1]], ['lenet5', [28, 28, 1]], ['mlp', [28, 28, 1]], ['resnet-small', [16, 16, 3]],
  ];
  for (const [arch, shape] of cases) {
    it(`${arch}: input gradient and every weight gradient within 1e-4`, async () => {
      const cpu = await onBackend('cpu', modelGrads(arch, shape, 4));
      const wasm = await onBackend('wasm', modelGrads(arch, shape, 4));
      expect(wasm.length).toBe(cpu.length);
      expect(cpu.length).toBeGreaterThan(2);
      cpu.forEach((c, i) => expect(relError(wasm[i]!, c), `gradient ${i}`).toBeLessThanOrEqual(1e-4));
      // A gradient that is all zeros would pass parity trivially on both backends.
      expect(cpu[0]!.some((v) => v !== 0)).toBe(true);
    });
  }
});
