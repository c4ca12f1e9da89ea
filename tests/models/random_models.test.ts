import { describe, expect, it } from 'vitest';
import { compileModel } from '../../src/models/compiler/index.js';
import { Rng } from '../../src/util/random.js';
import { onBackend, relError, tf, uniform, useBackend } from '../helpers.js';
import { randomizeStatistics, trainingCall } from './compiler_fixtures.js';
import { randomGraphModel, randomModel } from './random_fixtures.js';


describe('random functional models through the compiler', () => {
  // 190 seeds passed in a longer run while this was written; 40 stay in CI (a few seconds).
  for (let seed = 1; seed <= 40; seed++) {
    it(`model ${seed}: compiles whole (but UpSampling2D); probabilities equal predict; the input gradient equals the model's own on cpu; no leak; same bytes twice`, async () => {
      await useBackend('wasm');
      const { model, shape } = randomModel(seed);
      randomizeStatistics(model, seed);
      const compiled = compileModel(model);
      // UpSampling2D runs through tfjs (on advkit's resize gradients); everything else compiles.
      const fallbacks = compiled.report.nodes.filter((n) => !n.compiled);
      expect(fallbacks.filter((n) => n.source !== 'UpSampling2D'), JSON.stringify(fallbacks)).toEqual([]);
      const batch = 2;
      const x = uniform(batch * shape[0] * shape[1] * shape[2], seed, 0, 1);
      const cut = model.layers[model.layers.length - 1]!.getConfig().activation === 'softmax';
      // A cut softmax's logits are compared as probabilities, and the loss reads them so too.
      const probs = (t: tf.Tensor) => (cut ? tf.softmax(compiled.forward(t, false)) : compiled.forward(t, false));
      const xt = tf.tensor4d(x, [batch, ...shape]);
      const ours = tf.tidy(() => probs(xt));
      const theirs = model.predict(xt) as tf.Tensor;
      expect(relError(await ours.data(), await theirs.data())).toBeLessThanOrEqual(1e-5);
      const r = uniform(theirs.size, seed + 1);
      const rShape = theirs.shape;
      tf.dispose([xt, ours, theirs]);

      const grad = (f: (t: tf.Tensor) => tf.Tensor) => tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), tf.tensor(r, rShape))) as tf.Scalar)(tf.tensor4d(x, [batch, ...shape])));
      const before = tf.memory().numTensors;
      const g1 = grad(probs);
      const dx = await g1.data();
      g1.dispose();
      const g2 = grad(probs);
      expect(Array.from(await g2.data()), 'same bytes on a second run').toEqual(Array.from(dx));
      g2.dispose();
      expect(tf.memory().numTensors).toBe(before);

      // The reference: the model's own apply on cpu. Where tfjs cannot differentiate its own
      // layers (dilated convs, ThresholdedReLU, batch norm without centre or scale), the compiled
      // graph as plain tfjs ops on cpu.
      await useBackend('cpu');
      let ref: tf.Tensor;
      try {
        ref = grad((t) => model.apply(t, { training: false }) as tf.Tensor);
      } catch {
        ref = grad(probs);
      }
      expect(relError(dx, await ref.data())).toBeLessThanOrEqual(1e-4);
      ref.dispose();
      model.dispose();
    });
  }
});

describe('random functional models in training mode', () => {
  // Batch statistics, moving averages and every weight gradient against tfjs-layers' own training
  // call on cpu, batch 8 (100 seeds passed while this was written, the worst at 1e-5).
  for (let seed = 1; seed <= 20; seed++) {
    it(`model ${seed}: loss, every weight gradient and the moving averages equal the model's own training call on cpu; no leak`, async () => {
      const ours = randomModel(seed, true);
      const theirs = randomModel(seed, true);
      randomizeStatistics(ours.model, seed);
      theirs.model.setWeights(ours.model.getWeights());
      const shape = ours.shape;
      await useBackend('wasm');
      const compiled = compileModel(ours.model);
      const cut = ours.model.layers[ours.model.layers.length - 1]!.getConfig().activation === 'softmax';
      const probs = (t: tf.Tensor) => (cut ? tf.softmax(compiled.forward(t, true)) : compiled.forward(t, true));
      const run = (m: tf.LayersModel, f: (t: tf.Tensor) => tf.Tensor) => trainingCall(m, f, shape, 8);
      const before = tf.memory().numTensors;
      const wasm = await onBackend('wasm', run(ours.model, probs));
      expect(tf.memory().numTensors).toBe(before);
      const cpu = await onBackend('cpu', run(theirs.model, (t) => theirs.model.apply(t, { training: true }) as tf.Tensor));
      expect(wasm.length).toBe(cpu.length);
      wasm.forEach((w, i) => expect(relError(w, cpu[i]!), `output ${i} of ${wasm.length}`).toBeLessThanOrEqual(1e-4));
      ours.model.dispose();
      theirs.model.dispose();
    });
  }
});

describe('random converter-style GraphModels through the compiler', () => {
  // 200 seeds passed in a longer run when the family was written; 120 of each form stay in CI, and
  // ADVKIT_RANDOM_GRAPHS=N runs N of each.
  const count = Number(process.env.ADVKIT_RANDOM_GRAPHS ?? 120);
  for (const form of ['plain', 'tf2'] as const) for (let seed = 1; seed <= count; seed++) {
    it(`graph ${seed} (${form === 'tf2' ? 'TF2 form, with a signature' : 'plain'}): compiles whole; probabilities equal the executor's; the input gradient equals the executor's on cpu; no leak`, async () => {
      await useBackend('wasm');
      const { model, shape, softmax } = await randomGraphModel(seed, form);
      if (form === 'tf2') expect(model.outputNodes).toEqual([`dense_${seed}`]);
      const compiled = compileModel(model);
      expect(compiled.report.fallbacks, JSON.stringify(compiled.report.nodes.filter((n) => !n.compiled))).toBe(0);
      const batch = 2;
      const x = uniform(batch * shape[0] * shape[1] * shape[2], seed, 0, 1);
      const probs = (t: tf.Tensor) => (softmax ? tf.softmax(compiled.forward(t, false)) : compiled.forward(t, false));
      const executor = (t: tf.Tensor) => model.execute(t) as tf.Tensor;
      const ours = tf.tidy(() => probs(tf.tensor4d(x, [batch, ...shape])));
      const r = uniform(ours.size, seed + 1);
      const rShape = ours.shape;
      const grad = (f: (t: tf.Tensor) => tf.Tensor) => tf.tidy(() => {
        const xt = tf.tensor4d(x, [batch, ...shape]);
        return [f(xt), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), tf.tensor(r, rShape))) as tf.Scalar)(xt)];
      });
      ours.dispose();
      const before = tf.memory().numTensors;
      const wasm = grad(probs);
      const wasmData = await Promise.all(wasm.map((t) => t.data()));
      tf.dispose(wasm);
      expect(tf.memory().numTensors).toBe(before);
      // The reference is the executor on cpu (stock tfjs-wasm gets some fused ops wrong).
      await useBackend('cpu');
      const cpu = grad(executor);
      const cpuData = await Promise.all(cpu.map((t) => t.data()));
      tf.dispose(cpu);
      expect(relError(wasmData[0]!, cpuData[0]!), 'outputs').toBeLessThanOrEqual(1e-4);
      expect(relError(wasmData[1]!, cpuData[1]!), 'input gradients').toBeLessThanOrEqual(1e-4);
      model.dispose();
    });
  }
});
