import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { setWasmKernelMode } from '../../src/backend/kernels/register_all_kernels.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { compiledForward, forward } from '../../src/models/compiled.js';
import { onBackend, relError, uniform, useBackend } from '../helpers.js';

/**
 * The fused path (models/compiled.ts) must be the same function as the model: gradients of the
 * input and of every weight equal the cpu backend's model.apply, logits equal wasm's predict.
 */
function grads(build: () => tf.LayersModel, shape: [number, number, number], n: number, through: 'compiled' | 'apply', training: boolean) {
  return () => {
    const model = build();
    const x = tf.tensor4d(uniform(n * shape[0] * shape[1] * shape[2], 11, 0, 1), [n, ...shape]);
    const numClasses = model.outputs[0]!.shape[1] as number;
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => i % numClasses), 'int32'), numClasses);
    const f = (xx: tf.Tensor, training: boolean) => (through === 'compiled' ? forward(model, xx, training) : model.apply(xx, { training })) as tf.Tensor;
    const loss = (xx: tf.Tensor, training: boolean) => tf.losses.softmaxCrossEntropy(y, f(xx, training)) as tf.Scalar;
    const dx = tf.grad((xx: tf.Tensor) => loss(xx, false))(x);
    const { grads: g } = tf.variableGrads(() => loss(x, training), model.trainableWeights.map((w) => w.read() as tf.Variable));
    const out = [dx, ...model.trainableWeights.map((w) => g[(w.read() as tf.Variable).name]!), f(x, false)];
    model.dispose();
    return out;
  };
}

/** Small Sequentials for the corners of the fused path. */
const custom: Record<string, () => tf.LayersModel> = {
  // 3 channels (the JavaScript pooling path), odd sizes, a 3x3/2 'same' pool, stride-2 conv, no bias.
  'odd channels, same-padded 3x3 pool, strided conv without bias': () => tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [9, 9, 2], filters: 3, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
      tf.layers.conv2d({ filters: 8, kernelSize: 2, strides: 2, useBias: false, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 5, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    ],
  }),
  // A linear conv followed by a ReLU layer and a pool, a Dropout (inference: identity), Activation relu.
  'linear conv, ReLU layer, dropout, activation layer': () => tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [10, 10, 1], filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }), biasInitializer: tf.initializers.constant({ value: -0.05 }) }),
      tf.layers.reLU(),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({ units: 16, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }),
    ],
  }),
};

describe('fused forward path on wasm (models/compiled.ts)', () => {
  const archs: Array<[string, () => tf.LayersModel, [number, number, number]]> = [
    ...['mnist-cnn', 'madry-cnn', 'lenet5', 'mlp'].map((a) => [a, () => buildArchitecture(a, { seed: 3 }), [28, 28, 1]] as [string, () => tf.LayersModel, [number, number, number]]),
    ...Object.entries(custom).map(([name, build]) => [name, build, build().inputs[0]!.shape.slice(1) as [number, number, number]] as [string, () => tf.LayersModel, [number, number, number]]),
  ];
  for (const [name, build, shape] of archs) {
    it(`${name}: compiles; input and weight gradients within 1e-4 of cpu; logits equal wasm predict`, async () => {
      await useBackend('wasm');
      const probe = build();
      expect(compiledForward(probe)).not.toBeNull();
      const x = tf.tensor4d(uniform(3 * shape[0] * shape[1] * shape[2], 12, 0, 1), [3, ...shape]);
      const [a, b] = tf.tidy(() => [forward(probe, x, false).dataSync(), (probe.predict(x) as tf.Tensor).dataSync()]);
      expect(Array.from(a!)).toEqual(Array.from(b!));
      tf.dispose(x);
      probe.dispose();

      // Weight gradients in training mode, as training computes them (but Dropout is random there).
      const training = !name.includes('dropout');
      const cpu = await onBackend('cpu', grads(build, shape, 5, 'apply', training));
      const before = tf.memory().numTensors;
      const wasm = await onBackend('wasm', grads(build, shape, 5, 'compiled', training));
      expect(tf.memory().numTensors).toBe(before);
      expect(wasm.length).toBe(cpu.length);
      cpu.forEach((c, i) => expect(relError(wasm[i]!, c), `output ${i}`).toBeLessThanOrEqual(1e-4));
      expect(cpu[0]!.some((v) => v !== 0)).toBe(true);
    });
  }

  it('functional models and other activations compile too, and equal predict', async () => {
    await useBackend('wasm');
    const resnet = buildArchitecture('resnet-small', { inputShape: [16, 16, 3], seed: 1 });
    const tanh = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3, activation: 'tanh' })] });
    for (const [m, shape] of [[resnet, [2, 16, 16, 3]], [tanh, [2, 4, 4, 1]]] as const) {
      expect(compiledForward(m)).not.toBeNull();
      const x = tf.randomUniform([...shape], 0, 1, 'float32', 3);
      const [a, b] = tf.tidy(() => [forward(m, x, false).dataSync(), (m.predict(x) as tf.Tensor).dataSync()]);
      expect(relError(a!, b!)).toBeLessThanOrEqual(1e-5);
      tf.dispose(x);
      m.dispose();
    }
  });

  it('baseline kernel mode and the cpu backend use the model\'s own layers', async () => {
    const net = buildArchitecture('mlp', { seed: 1 });
    const kernels = async () => {
      const x = tf.ones([2, 28, 28, 1]);
      const p = await tf.profile(() => forward(net, x, false));
      tf.dispose([x, p.result as tf.Tensor]);
      return p.kernelNames;
    };
    await useBackend('wasm');
    expect(await kernels()).toContain('AdvkitDense');
    setWasmKernelMode('baseline');
    try {
      expect(await kernels()).not.toContain('AdvkitDense');
    } finally {
      setWasmKernelMode('advkit');
    }
    await useBackend('cpu');
    expect(await kernels()).not.toContain('AdvkitDense');
    net.dispose();
  });
});

describe('SIMD kernels', () => {
  it('the committed simd_kernels.generated.ts is simd_kernels.wat assembled', () => {
    expect(() => execFileSync(process.execPath, ['scripts/build_wasm.mjs', '--check'], { stdio: 'pipe' })).not.toThrow();
  });
});
