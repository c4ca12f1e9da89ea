import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadMnist, take } from '../../src/data/index.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { accuracy, randomShift, trainClassifier } from '../../src/defenses/train.js';
import { TrainPool } from '../../src/defenses/train_pool.js';
import { trainingStep } from '../../src/defenses/train_step.js';
import { Rng } from '../../src/util/random.js';
import { useBackend } from '../helpers.js';

/** All weights as bytes: equal buffers mean bit-identical weights. */
async function weightsOf(model: tf.LayersModel): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const w of model.getWeights()) {
    const d = (await w.data()) as Float32Array;
    parts.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
  }
  return Buffer.concat(parts);
}

describe('training on wasm', () => {
  it('model.fit works on the wasm backend with conv and max-pool layers', async () => {
    await useBackend('wasm');
    const model = buildArchitecture('mnist-cnn', { seed: 1 });
    model.compile({ optimizer: tf.train.sgd(0.05), loss: (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.softmaxCrossEntropy(yt, yp) });
    const data = take(loadMnist('train'), 64);
    const x = tf.tensor4d(data.images, [64, 28, 28, 1]);
    const y = tf.oneHot(tf.tensor1d(data.labels, 'int32'), 10);
    const h = await model.fit(x, y, { epochs: 3, batchSize: 32, shuffle: false });
    const losses = h.history.loss as number[];
    expect(losses[2]!).toBeLessThan(losses[0]!);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('trainClassifier learns, leaks no tensors, and is deterministic for a seed', async () => {
    await useBackend('wasm');
    const data = take(loadMnist('train'), 512);
    const test = take(loadMnist('test'), 256);
    const before = tf.memory().numTensors;
    const run = async () => {
      const model = buildArchitecture('mnist-cnn', { seed: 2 });
      const r = await trainClassifier(model, data, { epochs: 2, batchSize: 32, seed: 4, validation: test });
      const w = await weightsOf(model);
      model.dispose();
      return { r, w };
    };
    const a = await run();
    expect(tf.memory().numTensors).toBe(before);
    const b = await run();
    expect(b.w.equals(a.w)).toBe(true);
    expect(a.r.history[1]!.valAccuracy!).toBeGreaterThan(0.6);
    expect(a.r.history[1]!.loss).toBeLessThan(a.r.history[0]!.loss);
  });

  it('data-parallel training on 1 or 2 worker threads gives the same weights, bit for bit, as one thread (natural, noise, TRADES, fast FGSM)', async () => {
    await useBackend('wasm');
    const data = take(loadMnist('train'), 96);
    const recipes: Array<Partial<Parameters<typeof trainClassifier>[2]>> = [
      { shift: 2 },
      { noise: 0.25 },
      { adversarial: { method: 'trades', eps: 0.1, steps: 2, beta: 3 } },
      { adversarial: { method: 'fgsm-rs', eps: 0.1 } },
    ];
    for (const recipe of recipes) {
      const run = async (workers: number) => {
        const model = buildArchitecture('mnist-cnn', { seed: 5 });
        const pool = workers > 0 ? await TrainPool.create(model, { workers, backend: 'wasm', inputShape: [28, 28, 1], numClasses: 10 }) : undefined;
        try {
          const r = await trainClassifier(model, data, { epochs: 1, batchSize: 48, seed: 3, shards: 2, pool, ...recipe });
          return { w: await weightsOf(model), loss: r.history[0]!.loss };
        } finally {
          await pool?.close();
          model.dispose();
        }
      };
      const before = tf.memory().numTensors;
      const main = await run(0);
      expect(tf.memory().numTensors, `${JSON.stringify(recipe)} leaks`).toBe(before);
      for (const workers of [1, 2]) {
        const r = await run(workers);
        expect(r.w.equals(main.w), `${JSON.stringify(recipe)} on ${workers} workers`).toBe(true);
        expect(r.loss).toBe(main.loss);
      }
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('the pool shares its weights and gradient buffers with the workers and reuses them from step to step; a second step started while one runs is refused', async () => {
    await useBackend('wasm');
    const model = buildArchitecture('mnist-cnn', { seed: 5 });
    const pool = await TrainPool.create(model, { workers: 2, backend: 'wasm', inputShape: [28, 28, 1], numClasses: 10 });
    const x = tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
    const opt = tf.train.sgd(0.1);
    try {
      const step = () => trainingStep(model, opt, x, y, { numClasses: 10, shards: 2, pool, seed: 1 });
      await step();
      const size = model.trainableWeights.reduce((a, w) => a + w.shape.reduce((p: number, d) => p * d!, 1), 0);
      const names = ['weights', 'grads 0', 'grads 1'];
      const buffers = names.map((name) => pool.shared(name, size));
      expect(buffers.every((b) => b.buffer instanceof SharedArrayBuffer)).toBe(true);
      await step();
      names.forEach((name, i) => expect(pool.shared(name, size)).toBe(buffers[i]));
      const running = step();
      await expect(step()).rejects.toThrow(/running another step/);
      await running;
      // The refused step changed nothing: three updates, as three lone steps in this thread make.
      const alone = buildArchitecture('mnist-cnn', { seed: 5 });
      const optAlone = tf.train.sgd(0.1);
      for (let i = 0; i < 3; i++) await trainingStep(alone, optAlone, x, y, { numClasses: 10, shards: 2, seed: 1 });
      expect((await weightsOf(model)).equals(await weightsOf(alone))).toBe(true);
      alone.dispose();
    } finally {
      await pool.close();
      tf.dispose([x, y]);
      model.dispose();
    }
  });

  it('shards change the arithmetic, not the gradient: 1 and 4 shards give nearly the same weights', async () => {
    await useBackend('wasm');
    const data = take(loadMnist('train'), 64);
    const run = async (shards: number) => {
      const model = buildArchitecture('mlp', { seed: 5 });
      await trainClassifier(model, data, { epochs: 1, batchSize: 64, seed: 3, shards, shift: 0 });
      const w = model.getWeights().map((t) => Array.from(t.dataSync()));
      model.dispose();
      return w.flat();
    };
    const one = await run(1);
    const four = await run(4);
    const maxDiff = one.reduce((m, v, i) => Math.max(m, Math.abs(v - four[i]!)), 0);
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('a model with BatchNormalization trains in shards (ghost batch norm): the same weights and moving statistics alone, on 1 worker and on 2; the first layer\'s moving mean moves by the whole batch\'s mean', async () => {
    await useBackend('wasm');
    const shape: [number, number, number] = [12, 12, 3];
    const rng = new Rng(4);
    const x = tf.tensor4d(Float32Array.from({ length: 8 * 12 * 12 * 3 }, () => rng.next()), [8, ...shape]);
    const y = tf.tensor1d(Array.from({ length: 8 }, (_, i) => i % 10), 'int32');
    const adversarial = { method: 'fgsm-rs' as const, eps: 0.03, steps: 1, beta: 0, rampEpochs: 0 };
    const run = async (shards: number, workers: number) => {
      const model = buildArchitecture('resnet-small', { inputShape: shape, seed: 1 });
      const pool = workers > 0 ? await TrainPool.create(model, { workers, inputShape: shape, numClasses: 10 }) : undefined;
      try {
        const opt = tf.train.sgd(0.05);
        for (let k = 0; k < 2; k++) await trainingStep(model, opt, x, y, { numClasses: 10, shards, pool, adversarial, seed: k });
        opt.dispose();
      } finally {
        await pool?.close();
      }
      // Weights in order (layer names carry a global counter, so differ between builds).
      const out = { names: model.weights.map((w) => w.originalName), values: model.weights.map((w) => Array.from(w.read().dataSync())) };
      model.dispose();
      return out;
    };
    const alone = await run(2, 0);
    const one = await run(2, 1);
    const two = await run(2, 2);
    expect(one.values).toEqual(alone.values);
    expect(two.values).toEqual(alone.values);
    const moving = alone.names.flatMap((k, i) => (/moving_mean/.test(k) ? [i] : []));
    expect(moving.length).toBeGreaterThan(1);
    for (const i of moving) expect(alone.values[i]!.some((v) => v !== 0), alone.names[i]).toBe(true);
    // A step's first batch norm sees the same inputs either way: equal shards' merged moving mean
    // equals the whole batch's (to float32 rounding) after the first step.
    const firstStep = async (shards: number) => {
      const model = buildArchitecture('resnet-small', { inputShape: shape, seed: 1 });
      await trainingStep(model, tf.train.sgd(0), x, y, { numClasses: 10, shards });
      const first = model.weights.find((w) => /moving_mean/.test(w.originalName))!.read().dataSync().slice();
      model.dispose();
      return first;
    };
    const [m1, m2] = [await firstStep(1), await firstStep(2)];
    expect(m1.some((v) => Math.abs(v) > 1e-3)).toBe(true);
    m1.forEach((v, i) => expect(m2[i]!).toBeCloseTo(v, 6));
    tf.dispose([x, y]);
  });

  it('an interrupted run resumed from its checkpoint ends with the same weights as an uninterrupted one', async () => {
    await useBackend('wasm');
    const data = take(loadMnist('train'), 256);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-ckpt-'));
    const opts = { batchSize: 32, seed: 9, schedule: 'constant' as const };
    const full = buildArchitecture('mlp', { seed: 1 });
    await trainClassifier(full, data, { ...opts, epochs: 3 });
    // "Interrupted" after 2 epochs: a checkpoint exists; a new process resumes for the third.
    const first = buildArchitecture('mlp', { seed: 1 });
    await trainClassifier(first, data, { ...opts, epochs: 2, checkpointDir: dir });
    const resumedModel = buildArchitecture('mlp', { seed: 1 });
    const resumed = await trainClassifier(resumedModel, data, { ...opts, epochs: 3, checkpointDir: dir });
    expect(resumed.resumedFrom).toBe(2);
    expect((await weightsOf(resumedModel)).equals(await weightsOf(full))).toBe(true);
    [full, first, resumedModel].forEach((m) => m.dispose());
  });

  it('a checkpoint of another configuration is refused, not silently resumed', async () => {
    await useBackend('wasm');
    const data = take(loadMnist('train'), 64);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-ckpt-'));
    const m = buildArchitecture('mlp', { seed: 1 });
    await trainClassifier(m, data, { epochs: 1, batchSize: 32, seed: 1, checkpointDir: dir });
    await expect(trainClassifier(m, data, { epochs: 2, batchSize: 16, seed: 1, checkpointDir: dir })).rejects.toThrow(/checkpoint of another run/);
    m.dispose();
  });

  it('accuracy of a constant classifier is the frequency of its class', async () => {
    await useBackend('wasm');
    const test = take(loadMnist('test'), 200);
    const acc = await accuracy((x) => tf.tidy(() => tf.oneHot(tf.fill([x.shape[0]], 3, 'int32') as tf.Tensor1D, 10).toFloat() as tf.Tensor2D), test);
    expect(acc).toBeCloseTo(Array.from(test.labels).filter((l) => l === 3).length / 200, 10);
  });

  it('randomShift translates images with zero fill and keeps shift 0 as identity', () => {
    const img = Float32Array.from({ length: 9 }, (_, i) => i + 1);
    expect(Array.from(randomShift(img, [3, 3, 1], 0, new Rng(1)))).toEqual(Array.from(img));
    for (let s = 0; s < 20; s++) {
      const out = randomShift(img, [3, 3, 1], 1, new Rng(s));
      const kept = Array.from(out).filter((v) => v !== 0);
      // Every kept value is an original value, in the same relative order.
      expect(kept.every((v, i) => i === 0 || v > kept[i - 1]!)).toBe(true);
      expect(kept.length === 9 || kept.length === 6 || kept.length === 4).toBe(true);
    }
  });
});
