import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { attackDataset, pgd } from '../../src/attacks/index.js';
import { loadMnist, subset, take } from '../../src/data/index.js';
import { fromLayersModel } from '../../src/models/classifier.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { useBackend } from '../helpers.js';

describe('attackDataset', () => {
  it("an example's result does not depend on its batch: a subset attacked alone gives the same adversarials", async () => {
    await useBackend('wasm');
    const model = fromLayersModel(buildArchitecture('mlp', { seed: 2 }));
    const ds = take(loadMnist('test'), 24);
    const collect = async (d: typeof ds, batchSize: number) => {
      const out = new Map<number, Float32Array>();
      const per = 784;
      for await (const b of attackDataset(pgd, model, d, { eps: 0.2, steps: 3, seed: 7 }, { batchSize, target: 'random' })) {
        const adv = await b.result.adversarial.data();
        for (let k = 0; k < b.end - b.start; k++) out.set(d.ids[b.start + k]!, Float32Array.from(adv.subarray(k * per, (k + 1) * per)));
        tf.dispose([b.x, b.result.adversarial]);
      }
      return out;
    };
    const before = tf.memory().numTensors;
    const all = await collect(ds, 8);
    const some = await collect(subset(ds, [23, 5, 11, 2, 17]), 3);
    expect(tf.memory().numTensors).toBe(before);
    for (const [id, adv] of some) {
      const ref = all.get(id)!;
      let maxDiff = 0;
      for (let i = 0; i < adv.length; i++) maxDiff = Math.max(maxDiff, Math.abs(adv[i]! - ref[i]!));
      expect(maxDiff).toBeLessThanOrEqual(1e-6);
    }
  });
});
