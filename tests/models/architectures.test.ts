import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { ARCHITECTURES, buildArchitecture } from '../../src/models/architectures.js';
import { useBackend } from '../helpers.js';

describe('architectures', () => {
  for (const name of ARCHITECTURES) {
    it(`${name} builds, outputs [N, 10] logits and the same seed gives the same weights`, async () => {
      await useBackend('wasm');
      const shape: [number, number, number] = name === 'resnet-small' ? [32, 32, 3] : [28, 28, 1];
      const a = buildArchitecture(name, { seed: 7 });
      const b = buildArchitecture(name, { seed: 7 });
      const c = buildArchitecture(name, { seed: 8 });
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

  it('rejects an unknown architecture, listing the known ones', () => {
    expect(() => buildArchitecture('vgg99')).toThrow(/unknown architecture "vgg99"; use one of mnist-cnn, madry-cnn/);
  });
});
