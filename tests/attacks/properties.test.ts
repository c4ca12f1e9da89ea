import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { bim, fgsm, mifgsm, pgd } from '../../src/attacks/index.js';
import type { AttackResult } from '../../src/attacks/gradient_descent.js';
import type { Classifier } from '../../src/models/classifier.js';
import { useBackend } from '../helpers.js';
import type { NormName } from '../../src/util/norms.js';
import { attackNorms, type AttackName } from '../../src/attacks/registry.js';
import { assertBallProperty, images, linearModel } from './fixtures.js';

type AnyAttack = (m: Classifier, x: tf.Tensor4D, y: number[], o: { eps: number; norm: NormName; seed: number; steps?: number }) => Promise<AttackResult>;
const ATTACKS: Record<string, AnyAttack> = {
  fgsm: (m, x, y, o) => fgsm(m, x, y, o),
  bim: (m, x, y, o) => bim(m, x, y, { ...o, steps: 3 }),
  pgd: (m, x, y, o) => pgd(m, x, y, { ...o, steps: 3, restarts: 2 }),
  mifgsm: (m, x, y, o) => mifgsm(m, x, y, { ...o, steps: 3 }),
};

for (const backend of ['wasm', 'cpu'] as const) {
  for (const [name, attack] of Object.entries(ATTACKS)) {
    for (const norm of attackNorms(name as AttackName)) {
      describe(`${name} ${norm} on ${backend}`, () => {
        it('stays inside the eps-ball and the bounds, is deterministic for a seed and leaks no tensors', async () => {
          await useBackend(backend);
          await assertBallProperty(attack, norm, { numRuns: 12, smooth: false, maxSide: 5, maxClasses: 5 });
        });

        it('eps = 0 returns the input, byte for byte', async () => {
          await useBackend(backend);
          const shape: [number, number, number] = [3, 3, 2];
          const model = linearModel(shape, 3, 1);
          const x = images(2, shape, 2);
          const r = await attack(model, x, [0, 1], { eps: 0, norm, seed: 1 });
          const [a, xs] = await Promise.all([r.adversarial.data(), x.data()]);
          expect(Buffer.from(a.buffer).equals(Buffer.from(xs.buffer))).toBe(true);
          expect(Array.from(r.norms.linf)).toEqual([0, 0]);
          tf.dispose([r.adversarial, x]);
        });
      });
    }
  }
}

describe('attacks agree across backends', () => {
  it('PGD on wasm and on cpu lands on the same points (to float tolerance)', async () => {
    const run = async (backend: 'wasm' | 'cpu') => {
      await useBackend(backend);
      const model = linearModel([4, 4, 1], 4, 3);
      const x = images(3, [4, 4, 1], 9);
      const r = await pgd(model, x, [0, 1, 2], { eps: 0.1, steps: 5, seed: 3 });
      const a = await r.adversarial.data();
      tf.dispose([x, r.adversarial]);
      return a;
    };
    const a = await run('wasm');
    const b = await run('cpu');
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-5);
  });
});
