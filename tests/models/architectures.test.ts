import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { ARCHITECTURES, buildArchitecture } from '../../src/models/architectures.js';
import { useBackend } from '../helpers.js';

describe('architectures', () => {
  for (const name of ARCHITECTURES) {
    it(`${name} builds, outputs [N, 10] logits and the same seed gives the same weights`, async () => {
      await useBackend('wasm');
      const SHAPES: Record<string, [number, number, number]> = { 'resnet-small': [32, 32, 3], 'mobilenet-v2': [32, 32, 3], 'resnet-18': [16, 16, 3], 'mini-xception': [24, 24, 1] };
      const shape = SHAPES[name] ?? [28, 28, 1];
      const opts = { inputShape: shape, alpha: 0.35 };
      const a = buildArchitecture(name, { ...opts, seed: 7 });
      const b = buildArchitecture(name, { ...opts, seed: 7 });
      const c = buildArchitecture(name, { ...opts, seed: 8 });
      const x = tf.zeros([2, ...shape]);
      expect((a.predict(x) as tf.Tensor).shape).toEqual([2, 10]);
      const wa = await a.getWeights()[0]!.data();
      expect(Array.from(await b.getWeights()[0]!.data())).toEqual(Array.from(wa));
      expect(Array.from(await c.getWeights()[0]!.data())).not.toEqual(Array.from(wa));
      tf.dispose(x);
      [a, b, c].forEach((m) => m.dispose());
    });
  }

  it('mnist-cnn is the reference CNN of DESIGN.md', () => {
    const m = buildArchitecture('mnist-cnn');
    expect(m.layers.map((l) => l.getClassName())).toEqual(['Conv2D', 'MaxPooling2D', 'Conv2D', 'MaxPooling2D', 'Flatten', 'Dense', 'Dense']);
    expect(m.countParams()).toBe(320 + 18496 + 1600 * 128 + 128 + 1290);
    m.dispose();
  });

  it('mobilenet-v2 is keras.applications.MobileNetV2 (3,538,984 weights at alpha 1 with 1000 classes)', () => {
    const m = buildArchitecture('mobilenet-v2', { numClasses: 1000 });
    expect(m.countParams()).toBe(3538984);
    expect(m.layers.filter((l) => l.getClassName() === 'DepthwiseConv2D').length).toBe(17);
    m.dispose();
  });

  it('resnet-18 has torchvision resnet18\'s weights (11,689,512 with 1000 classes at 224; the CIFAR stem below 100 pixels)', () => {
    const m = buildArchitecture('resnet-18', { inputShape: [224, 224, 3], numClasses: 1000 });
    // torchvision's count includes batch-norm running statistics only as buffers; Keras counts them as weights.
    const bnStats = m.layers.filter((l) => l.getClassName() === 'BatchNormalization').reduce((a, l) => a + 2 * (l.getWeights()[0]!.size), 0);
    expect(m.countParams() - bnStats).toBe(11689512);
    m.dispose();
    const cifar = buildArchitecture('resnet-18', { inputShape: [32, 32, 3] });
    expect(cifar.layers.some((l) => l.getClassName() === 'MaxPooling2D')).toBe(false);
    cifar.dispose();
  });

  it('rejects an unknown architecture, listing the known ones', () => {
    expect(() => buildArchitecture('vgg99')).toThrow(/unknown architecture "vgg99"; use one of mnist-cnn, madry-cnn/);
  });
});
