import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { attackDataset, pgd } from '../../src/attacks/index.js';
import { predictDataset } from '../../src/attacks/dataset.js';
import { AttackPool } from '../../src/attacks/pool.js';
import { loadMnist, take } from '../../src/data/index.js';
import { loadClassifier } from '../../src/models/io.js';
import { evaluateRobustness } from '../../src/eval/evaluate.js';
import type { RobustnessReport } from '../../src/eval/report.js';
import { bitDepth, defend, gaussianNoise, jpeg, withGradient } from '../../src/defenses/preprocess.js';
import { tempDirWithModel } from '../cli/run.js';

describe('AttackPool', () => {
  it('gives the same adversarials and clean predictions, byte for byte, with 1 or 2 worker threads as in the main thread', async () => {
    const { model: dir } = await tempDirWithModel('advkit-pool-', 'mnist-cnn', 4);
    const { classifier } = await loadClassifier(dir);
    const ds = take(loadMnist('test'), 40);
    const run = async (pool?: AttackPool) => {
      const chunks: Buffer[] = [];
      for await (const b of attackDataset(pgd, classifier, ds, { eps: 0.2, steps: 4, seed: 9 }, { batchSize: 16, pool, target: 'random' })) {
        const a = (await b.result.adversarial.data()) as Float32Array;
        chunks.push(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.result.success), Buffer.from(b.cleanPredictions.buffer, b.cleanPredictions.byteOffset, b.cleanPredictions.byteLength));
        expect(b.cleanPredictions.length).toBe(b.end - b.start);
        tf.dispose([b.x, b.result.adversarial]);
      }
      return Buffer.concat(chunks);
    };
    const before = tf.memory().numTensors;
    const main = await run();
    for (const workers of [1, 2]) {
      const pool = await AttackPool.create(dir, { workers, backend: 'wasm' });
      try {
        expect((await run(pool)).equals(main)).toBe(true);
      } finally {
        await pool.close();
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an evaluation with APGD-CE, APGD-T, FAB-T and Square gives the same report and minimum-norm distances on 2 workers as in the main thread', async () => {
    const { model: dir } = await tempDirWithModel('advkit-pool-', 'mnist-cnn', 5);
    const { classifier } = await loadClassifier(dir);
    const ds = take(loadMnist('test'), 20);
    const attacks = [
      { name: 'apgd-ce' as const, options: { steps: 4 } },
      { name: 'apgd-t' as const, options: { steps: 3, targets: 2 } },
      { name: 'fab-t' as const, options: { steps: 4, targets: 2 } },
      { name: 'square' as const, options: { queries: 10 } },
    ];
    const strip = (r: RobustnessReport) => JSON.stringify({ results: r.results.map((e) => ({ ...e, attacks: e.attacks.map((a) => ({ ...a, seconds: 0 })) })), minimumNorm: r.minimumNorm });
    const main = await evaluateRobustness(classifier, ds, { attacks, epsilons: [0.02, 0.05], checks: false, batchSize: 8 });
    const pool = await AttackPool.create(dir, { workers: 2, backend: 'wasm' });
    try {
      const onPool = await evaluateRobustness(classifier, ds, { attacks, epsilons: [0.02, 0.05], checks: false, batchSize: 8, pool });
      expect(strip(onPool.report)).toBe(strip(main.report));
      expect(main.report.minimumNorm!.distances.length).toBe(20);
    } finally {
      await pool.close();
    }
  });

  it('a minimum-norm evaluation (FMN, Carlini–Wagner, DeepFool under L2) gives the same report, distances and finders on 2 workers as in the main thread', async () => {
    const { model: dir } = await tempDirWithModel('advkit-pool-', 'mnist-cnn', 6);
    const { classifier } = await loadClassifier(dir);
    const ds = take(loadMnist('test'), 12);
    const attacks = [
      { name: 'fmn' as const, options: { steps: 8 } },
      { name: 'cw' as const, options: { steps: 8, binarySteps: 2, initialConst: 1 } },
      { name: 'deepfool' as const, options: { steps: 5 } },
    ];
    const strip = (r: RobustnessReport) => JSON.stringify({ results: r.results.map((e) => ({ ...e, attacks: e.attacks.map((a) => ({ ...a, seconds: 0 })) })), minimumNorm: r.minimumNorm });
    const main = await evaluateRobustness(classifier, ds, { attacks, norm: 'l2', epsilons: [0.5, 1.5], checks: false, batchSize: 5 });
    const pool = await AttackPool.create(dir, { workers: 2, backend: 'wasm' });
    try {
      const onPool = await evaluateRobustness(classifier, ds, { attacks, norm: 'l2', epsilons: [0.5, 1.5], checks: false, batchSize: 5, pool });
      expect(strip(onPool.report)).toBe(strip(main.report));
      expect(main.report.minimumNorm!.foundBy!.filter((a) => a !== null).length).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });

  it('workers report the forward passes of a running job (a progress bar moves within a batch), and the job gives the same result', async () => {
    const { model: dir } = await tempDirWithModel('advkit-pool-', 'mlp', 1);
    const pool = await AttackPool.create(dir, { workers: 1, backend: 'wasm' });
    try {
      const reports: number[] = [];
      pool.onWorkerProgress = (n) => reports.push(n);
      const job = () => ({ attack: 'pgd' as const, options: { eps: 0.1, steps: 30 }, images: new Float32Array(4 * 784).fill(0.5), shape: [4, 28, 28, 1] as [number, number, number, number], labels: Int32Array.from([0, 1, 2, 3]), seeds: Int32Array.from([1, 2, 3, 4]) });
      const r = await pool.run(job());
      expect(reports.length).toBeGreaterThanOrEqual(1);
      expect(reports.every((n) => Number.isInteger(n) && n >= 1)).toBe(true);
      // At most one report per forward pass: 30 steps and the final check.
      expect(reports.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(31 + 1);
      pool.onWorkerProgress = undefined;
      expect(Array.from((await pool.run(job())).adversarial!)).toEqual(Array.from(r.adversarial!));
    } finally {
      await pool.close();
    }
  });

  it('reports an attack error from a worker as an error of the run', async () => {
    const { model: dir } = await tempDirWithModel('advkit-pool-', 'mlp', 1);
    const pool = await AttackPool.create(dir, { workers: 1, backend: 'wasm' });
    try {
      await expect(pool.run({ attack: 'pgd', options: { eps: -1 }, images: new Float32Array(784), shape: [1, 28, 28, 1], labels: Int32Array.from([0]), seeds: Int32Array.from([1]) })).rejects.toThrow(/eps must be >= 0/);
    } finally {
      await pool.close();
    }
  });

  it('refuses a classifier other than its workers\' model: a defended one would otherwise be attacked bare', async () => {
    const { model: dir } = await tempDirWithModel('advkit-pool-', 'mlp', 1);
    const { model: other } = await tempDirWithModel('advkit-pool-other-', 'mlp', 1);
    const { classifier } = await loadClassifier(dir);
    const ds = take(loadMnist('test'), 4);
    const pool = await AttackPool.create(dir, { workers: 1, backend: 'wasm' });
    try {
      const drain = async (model: typeof classifier) => { for await (const b of attackDataset(pgd, model, ds, { eps: 0.1, steps: 2 }, { pool })) tf.dispose([b.x, b.result.adversarial]); };
      await expect(drain(defend(classifier, [jpeg(75)]))).rejects.toThrow(/the worker pool attacks the model in \S+, but this call's classifier is built from the model in \S+ wrapped by defendFromSpec\(.*"jpeg"/);
      await expect(drain(defend(classifier, [withGradient(jpeg(75), (x) => x)]))).rejects.toThrow(/but this call's classifier is one with no source/);
      await expect(drain((await loadClassifier(other)).classifier)).rejects.toThrow(/but this call's classifier is built from the model in .*advkit-pool-other-/);
      await expect(evaluateRobustness(defend(classifier, [jpeg(75)]), ds, { attacks: [{ name: 'fgsm' }], epsilons: [0.1], checks: false, pool })).rejects.toThrow(/attack it without a pool/);
      await drain(classifier);
    } finally {
      await pool.close();
    }
  });

  it('runs a defended evaluation on the pool built from the defended classifier, with the figures of one thread (JPEG, and seeded Gaussian noise with EOT)', async () => {
    const { model: dir } = await tempDirWithModel('advkit-pool-', 'mnist-cnn', 4);
    const { classifier } = await loadClassifier(dir);
    const ds = take(loadMnist('test'), 24);
    const strip = (r: RobustnessReport) => JSON.stringify({ clean: r.cleanAccuracy, defense: r.model.defense, results: r.results.map((e) => ({ ...e, attacks: e.attacks.map((a) => ({ ...a, seconds: 0 })) })) });
    const cases = [
      { model: defend(classifier, [jpeg(75)]), attacks: [{ name: 'pgd' as const, options: { steps: 3 } }, { name: 'square' as const, options: { queries: 8 } }] },
      { model: defend(classifier, [bitDepth(5), gaussianNoise(0.1, 7)], { eot: 2 }), attacks: [{ name: 'apgd-ce' as const, options: { steps: 3, eot: 2 } }] },
    ];
    for (const { model, attacks } of cases) {
      const before = tf.memory().numTensors;
      const alone = await evaluateRobustness(model, ds, { attacks, epsilons: [0.05, 0.15], checks: false, batchSize: 8 });
      const pool = await AttackPool.create(model, { workers: 2, backend: 'wasm' });
      try {
        const onPool = await evaluateRobustness(model, ds, { attacks, epsilons: [0.05, 0.15], checks: false, batchSize: 8, pool });
        expect(strip(onPool.report)).toBe(strip(alone.report));
        // The refusal still holds the other way: this pool does not attack the bare model.
        await expect(evaluateRobustness(classifier, ds, { attacks, epsilons: [0.05], checks: false, pool })).rejects.toThrow(/attack it without a pool/);
      } finally {
        await pool.close();
      }
      expect(tf.memory().numTensors).toBe(before);
      // The defense did something: its figures are not the bare model's.
      const bare = await evaluateRobustness(classifier, ds, { attacks, epsilons: [0.05, 0.15], checks: false, batchSize: 8 });
      expect(JSON.stringify(bare.report.results)).not.toBe(JSON.stringify(alone.report.results.map((e) => ({ ...e, attacks: e.attacks.map((a, k) => ({ ...a, seconds: bare.report.results[0]!.attacks[k]!.seconds })) }))));
    }
  });

  it('predicts a data set on the pool with the classes of one thread (bare and defended)', async () => {
    const { model: dir } = await tempDirWithModel('advkit-pool-', 'mnist-cnn', 4);
    const { classifier } = await loadClassifier(dir);
    const ds = take(loadMnist('test'), 50);
    const before = tf.memory().numTensors;
    const alone = await predictDataset(classifier, ds, { batchSize: 8 });
    const defended = defend(classifier, [jpeg(20)]);
    const defendedAlone = await predictDataset(defended, ds, { batchSize: 8 });
    expect(Array.from(defendedAlone)).not.toEqual(Array.from(alone));
    for (const [model, want] of [[classifier, alone], [defended, defendedAlone]] as const) {
      const pool = await AttackPool.create(model, { workers: 2, backend: 'wasm' });
      try {
        expect(Array.from(await predictDataset(model, ds, { batchSize: 8, pool }))).toEqual(Array.from(want));
        expect(Array.from(await predictDataset(model, ds, { batchSize: 50, pool }))).toEqual(Array.from(want));
      } finally {
        await pool.close();
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    // The pool of the bare model does not predict for the defended one.
    const pool = await AttackPool.create(dir, { workers: 1, backend: 'wasm' });
    try {
      await expect(predictDataset(defended, ds, { batchSize: 8, pool })).rejects.toThrow(/Error in predictDataset: the worker pool attacks the model in/);
    } finally {
      await pool.close();
    }
  });
});
