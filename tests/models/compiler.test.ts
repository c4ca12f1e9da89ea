import { describe, expect, it } from 'vitest';
import { buildArchitecture } from '../../src/models/architectures.js';
import { fromGraphModel, fromLayersModel } from '../../src/models/classifier.js';
import { compileModel } from '../../src/models/compiler/index.js';
import { onBackend, relError, tf, uniform, useBackend } from '../helpers.js';
import { converterClassifier, graphModel, randomizeStatistics, trainingCall } from './compiler_fixtures.js';
import { ModelError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/random.js';

type Input = [number, number, number];

/** A layer applied to symbolic tensors (functional-model building). */
const a = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => l.apply(x) as tf.SymbolicTensor;

/**
 * Input gradient and every trainable weight's gradient of sum(logits · r) through `run`,
 * with the logits last: [dx, ...dW, logits].
 */
function gradients(model: tf.LayersModel, run: (x: tf.Tensor) => tf.Tensor, shape: Input, batch: number, seed: number, pick = (v: tf.Variable[]) => v): () => tf.Tensor[] {
  return () => {
    const x = tf.tensor4d(uniform(batch * shape[0] * shape[1] * shape[2], seed, 0, 1), [batch, ...shape]);
    const logits = run(x);
    const r = tf.tensor(uniform(logits.size, seed + 1), logits.shape);
    const loss = (input: tf.Tensor) => tf.sum(tf.mul(run(input), r)) as tf.Scalar;
    const dx = tf.grad(loss)(x);
    const vars = pick(model.trainableWeights.map((w) => w.read() as tf.Variable));
    const { grads } = tf.variableGrads(() => loss(x), vars);
    return [dx, ...vars.map((v) => grads[v.name]!), logits];
  };
}

interface Family {
  name: string;
  build: () => tf.LayersModel;
  shape: Input;
  /** The weights whose gradients are compared (default all). */
  pick?: (v: tf.Variable[]) => tf.Variable[];
  /**
   * The cpu reference: the model's own apply (default), or the compiled graph as plain tfjs ops
   * (for ResNet-18: on cpu, apply's fused convs compute every filter gradient, a minute here).
   */
  reference?: 'apply' | 'plain';
}

const FAMILIES: Family[] = [
  { name: 'mobilenet-v2 alpha 0.35 (Keras functional: BN, ReLU6, ZeroPadding2D, DepthwiseConv2D, Add)', build: () => buildArchitecture('mobilenet-v2', { inputShape: [32, 32, 3], alpha: 0.35, seed: 3 }), shape: [32, 32, 3] },
  { name: 'mobilenet-v2 alpha 0.5 on 40x40 (odd sizes after striding)', build: () => buildArchitecture('mobilenet-v2', { inputShape: [40, 40, 3], alpha: 0.5, seed: 4 }), shape: [40, 40, 3], reference: 'plain' },
  { name: 'resnet-18 CIFAR form (padded stride-2 convs, 1x1 shortcuts)', build: () => buildArchitecture('resnet-18', { inputShape: [16, 16, 3], seed: 5 }), shape: [16, 16, 3], pick: (v) => [...v.slice(0, 9), ...v.slice(-2)], reference: 'plain' },
  // The cpu backend's filter gradients of 11M weights take minutes: the first block, the first
  // shortcut (conv + batch norm) and the head are compared.
  { name: 'resnet-18 ImageNet form (7x7/2 stem, padded 3x3/2 max pool)', build: () => buildArchitecture('resnet-18', { inputShape: [48, 48, 3], numClasses: 5, seed: 6, variant: 'imagenet' }), shape: [48, 48, 3], pick: (v) => [...v.slice(0, 9), ...v.slice(-2)], reference: 'plain' },
  { name: 'mini-xception (SeparableConv2D, 3x3/2 same max pools, residuals)', build: () => buildArchitecture('mini-xception', { inputShape: [24, 24, 1], numClasses: 7, seed: 7 }), shape: [24, 24, 1] },
  { name: 'resnet-small (BN after bias-free convs, ReLU layers)', build: () => buildArchitecture('resnet-small', { inputShape: [12, 12, 3], seed: 8 }), shape: [12, 12, 3] },
  {
    name: 'a functional grab-bag (Concatenate, Multiply, Cropping2D, LeakyReLU, ELU, swish/tanh/sigmoid, 5x5 and strided convs, Dense + BN, pools, Rescaling, Dropout)',
    shape: [12, 12, 2],
    build: () => {
      const input = tf.input({ shape: [12, 12, 2] });
      const scaled = a(tf.layers.rescaling({ scale: 2, offset: -1 }), input);
      const b1 = a(tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'swish' }), scaled);
      const b2 = a(tf.layers.conv2d({ filters: 4, kernelSize: 5, padding: 'same', activation: 'tanh' }), scaled);
      const b3 = a(tf.layers.leakyReLU({ alpha: 0.2 }), a(tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'sigmoid' }), scaled));
      let x = a(tf.layers.concatenate(), [b1, b2, b3]);
      x = a(tf.layers.multiply(), [x, a(tf.layers.conv2d({ filters: 14, kernelSize: 1, activation: 'sigmoid' }), x)]);
      x = a(tf.layers.cropping2D({ cropping: [[1, 0], [0, 1]] }), x);
      x = a(tf.layers.elu(), a(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid' }), x));
      x = a(tf.layers.spatialDropout1d({ rate: 0.2 }), a(tf.layers.reshape({ targetShape: [25, 8] }), x));
      x = a(tf.layers.reshape({ targetShape: [5, 5, 8] }), x);
      const avg = a(tf.layers.averagePooling2d({ poolSize: 2, padding: 'same' }), x);
      const mx = a(tf.layers.globalMaxPooling2d({}), x);
      let y = a(tf.layers.concatenate(), [a(tf.layers.flatten(), avg), mx]);
      y = a(tf.layers.dropout({ rate: 0.3 }), a(tf.layers.dense({ units: 16, useBias: false }), y));
      y = a(tf.layers.activation({ activation: 'relu6' }), a(tf.layers.batchNormalization(), y));
      return tf.model({ inputs: input, outputs: a(tf.layers.dense({ units: 5 }), y) });
    },
  },
  {
    name: 'a nested backbone (a functional model used as a layer, called twice with shared weights)',
    shape: [10, 10, 3],
    build: () => {
      const backbone = smallBackbone([10, 10, 3]);
      const input = tf.input({ shape: [10, 10, 3] });
      const left = a(backbone, a(tf.layers.rescaling({ scale: 2, offset: -1 }), input));
      const right = a(backbone, a(tf.layers.conv2d({ filters: 3, kernelSize: 1 }), input));
      const x = a(tf.layers.globalAveragePooling2d({}), a(tf.layers.add(), [left, right]));
      return tf.model({ inputs: input, outputs: a(tf.layers.dense({ units: 4 }), x) });
    },
  },
  {
    name: 'a Sequential with a nested functional backbone after its first layer',
    shape: [9, 9, 3],
    build: () => tf.sequential({ layers: [
      tf.layers.rescaling({ inputShape: [9, 9, 3], scale: 1 / 255, offset: 0 }), smallBackbone([9, 9, 3]), tf.layers.flatten(), tf.layers.dense({ units: 3 }),
    ] }),
  },
  {
    name: 'layer options (depth multiplier 2, 3x1 and 1x3 kernels, strides (2, 1), dilated conv and depthwise conv, BN without scale or center, pool strides unlike its size, Dense on rank 4 + BN)',
    shape: [11, 13, 3],
    // tfjs has no gradient for dilated convs (the layer's own apply throws in tf.grad): the
    // logits are compared with predict, the gradients with the compiled graph on cpu.
    reference: 'plain',
    build: () => {
      const input = tf.input({ shape: [11, 13, 3] });
      let x = a(tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: [2, 1], padding: 'same', activation: 'relu' }), input);
      x = a(tf.layers.batchNormalization({ scale: false }), a(tf.layers.conv2d({ filters: 5, kernelSize: [3, 1], padding: 'same', useBias: false }), x));
      x = a(tf.layers.batchNormalization({ center: false }), a(tf.layers.conv2d({ filters: 5, kernelSize: [1, 3], padding: 'valid', activation: 'relu6' }), x));
      x = a(tf.layers.conv2d({ filters: 4, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'relu' }), x);
      x = a(tf.layers.depthwiseConv2d({ kernelSize: [3, 2], dilationRate: [1, 3], padding: 'valid' }), x);
      x = a(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid' }), x);
      // Dense on a rank-4 tensor (per position, on the last axis), with a batch norm after it.
      x = a(tf.layers.batchNormalization(), a(tf.layers.dense({ units: 5, useBias: false }), x));
      x = a(tf.layers.batchNormalization(), a(tf.layers.dense({ units: 6, activation: 'relu' }), a(tf.layers.flatten(), x)));
      return tf.model({ inputs: input, outputs: a(tf.layers.dense({ units: 3 }), x) });
    },
  },
  {
    name: 'EfficientNet-style MBConv (swish, squeeze-excite: GAP, Reshape to 1x1, 1x1 convs, sigmoid gate, Multiply; residual)',
    shape: [10, 10, 4],
    build: () => {
      const input = tf.input({ shape: [10, 10, 4] });
      const swish = () => tf.layers.activation({ activation: 'swish' });
      let h = a(swish(), a(tf.layers.batchNormalization(), a(tf.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false }), input)));
      h = a(swish(), a(tf.layers.batchNormalization(), a(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false }), h)));
      let se = a(tf.layers.reshape({ targetShape: [1, 1, 16] }), a(tf.layers.globalAveragePooling2d({}), h));
      se = a(tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'swish' }), se);
      se = a(tf.layers.conv2d({ filters: 16, kernelSize: 1, activation: 'sigmoid' }), se);
      h = a(tf.layers.multiply(), [h, se]);
      h = a(tf.layers.batchNormalization(), a(tf.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false }), h));
      h = a(tf.layers.add(), [a(tf.layers.dropout({ rate: 0.2 }), h), input]);
      const out = a(tf.layers.dense({ units: 3 }), a(tf.layers.globalAveragePooling2d({}), h));
      return tf.model({ inputs: input, outputs: out });
    },
  },
  {
    name: 'DenseNet-style (BN-ReLU-conv order, dense concatenation, 1x1 + 2x2 average-pool transition)',
    shape: [8, 8, 3],
    build: () => {
      const input = tf.input({ shape: [8, 8, 3] });
      let h = a(tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false }), input);
      for (let k = 0; k < 2; k++) {
        let g = a(tf.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false }), a(tf.layers.activation({ activation: 'relu' }), a(tf.layers.batchNormalization(), h)));
        g = a(tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false }), a(tf.layers.activation({ activation: 'relu' }), a(tf.layers.batchNormalization(), g)));
        h = a(tf.layers.concatenate(), [h, g]);
      }
      h = a(tf.layers.conv2d({ filters: 7, kernelSize: 1, useBias: false }), a(tf.layers.activation({ activation: 'relu' }), a(tf.layers.batchNormalization(), h)));
      h = a(tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }), h);
      h = a(tf.layers.activation({ activation: 'relu' }), a(tf.layers.batchNormalization(), h));
      return tf.model({ inputs: input, outputs: a(tf.layers.dense({ units: 4 }), a(tf.layers.globalAveragePooling2d({}), h)) });
    },
  },
  {
    name: 'small feature maps (3x3 convs on 2x2 and 1x1 maps, a strided conv onto 1x1, 7x7 on 3x3, depthwise on 1x1, explicit padding): taps that read only padding are dropped',
    shape: [4, 4, 3],
    build: () => tinyMapsModel(),
  },
  {
    name: 'merge layers and activations (Multiply, Maximum, Minimum, Average of three, selu, softplus, softsign, hard_sigmoid, mish, gelu, elu, ReLU max 6, PReLU shared and per position, AveragePooling valid)',
    shape: [6, 6, 2],
    build: () => {
      const input = tf.input({ shape: [6, 6, 2] });
      const conv = (activation: string) => a(tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: activation as 'linear' }), input);
      const [p, q, r, t] = [conv('selu'), conv('softplus'), conv('softsign'), conv('hardSigmoid')];
      const [u, v] = [conv('mish'), conv('gelu')];
      let h = a(tf.layers.average(), [a(tf.layers.multiply(), [p, q]), a(tf.layers.maximum(), [r, t]), a(tf.layers.minimum(), [u, v])]);
      h = a(tf.layers.reLU({ maxValue: 6 }), a(tf.layers.conv2d({ filters: 5, kernelSize: 3, activation: 'elu' }), h));
      // PReLU with slopes per channel (shared over space) and per position.
      const slopes = (seed: number) => tf.initializers.randomUniform({ minval: 0.05, maxval: 0.5, seed });
      h = a(tf.layers.prelu({ sharedAxes: [1, 2], alphaInitializer: slopes(1) }), h);
      h = a(tf.layers.prelu({ alphaInitializer: slopes(2) }), a(tf.layers.conv2d({ filters: 5, kernelSize: 1 }), h));
      h = a(tf.layers.averagePooling2d({ poolSize: 2, padding: 'valid' }), h);
      return tf.model({ inputs: input, outputs: a(tf.layers.dense({ units: 3 }), a(tf.layers.flatten(), h)) });
    },
  },
];

/** Convs whose taps partly read only padding (small maps), as ImageNet architectures on 32x32 inputs have. */
function tinyMapsModel(): tf.LayersModel {
  const input = tf.input({ shape: [4, 4, 3] });
  let h = a(tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }), input); // 2x2
  h = a(tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false }), h);
  const wide = a(tf.layers.conv2d({ filters: 4, kernelSize: 7, padding: 'same' }), a(tf.layers.zeroPadding2d({ padding: [[1, 0], [0, 0]] }), h)); // 3x2, 7x7 taps
  h = a(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }), h); // 1x1
  h = a(tf.layers.activation({ activation: 'relu' }), a(tf.layers.batchNormalization(), a(tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false }), h)));
  h = a(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', activation: 'relu6' }), h);
  h = a(tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'valid' }), a(tf.layers.zeroPadding2d({ padding: 1 }), h));
  const out = a(tf.layers.concatenate(), [a(tf.layers.flatten(), h), a(tf.layers.globalAveragePooling2d({}), wide)]);
  return tf.model({ inputs: input, outputs: a(tf.layers.dense({ units: 3 }), out) });
}

/** A Keras-style functional backbone: conv + BN + ReLU6, depthwise + BN + ReLU6, residual add. */
function smallBackbone(shape: Input): tf.LayersModel {
  const input = tf.input({ shape });
  let h = a(tf.layers.reLU({ maxValue: 6 }), a(tf.layers.batchNormalization(), a(tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false }), input)));
  h = a(tf.layers.reLU({ maxValue: 6 }), a(tf.layers.batchNormalization(), a(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false }), h)));
  h = a(tf.layers.add(), [h, a(tf.layers.conv2d({ filters: 6, kernelSize: 1 }), input)]);
  return tf.model({ inputs: input, outputs: h });
}

describe('model compiler (models/compiler)', () => {
  for (const family of FAMILIES) {
    it(`${family.name}: compiles whole; logits equal predict; input and weight gradients equal the cpu backend's`, async () => {
      await useBackend('wasm');
      const model = family.build();
      randomizeStatistics(model, 11);
      const compiled = compileModel(model);
      expect(compiled.report.fallbacks, JSON.stringify(compiled.report.nodes.filter((n) => !n.compiled))).toBe(0);
      // Logits: compiled on wasm vs the model's own predict on wasm.
      const x = tf.tensor4d(uniform(3 * family.shape.reduce((p, d) => p * d, 1), 2, 0, 1), [3, ...family.shape]);
      const ours = tf.tidy(() => compiled.forward(x, false));
      const theirs = model.predict(x) as tf.Tensor;
      expect(relError(await ours.data(), await theirs.data())).toBeLessThanOrEqual(1e-5);
      tf.dispose([x, ours, theirs]);

      const before = tf.memory().numTensors;
      const wasm = await onBackend('wasm', gradients(model, (t) => compiled.forward(t, false), family.shape, 2, 21, family.pick));
      const wasmAgain = await onBackend('wasm', gradients(model, (t) => compiled.forward(t, false), family.shape, 2, 21, family.pick));
      expect(tf.memory().numTensors).toBe(before);
      const reference = family.reference === 'plain' ? (t: tf.Tensor) => compiled.forward(t, false) : (t: tf.Tensor) => model.apply(t, { training: false }) as tf.Tensor;
      const cpu = await onBackend('cpu', gradients(model, reference, family.shape, 2, 21, family.pick));
      expect(wasm.length).toBe(cpu.length);
      wasm.forEach((w, i) => {
        expect(relError(w, cpu[i]!), `gradient ${i} of ${wasm.length}`).toBeLessThanOrEqual(1e-4);
        expect(Array.from(wasmAgain[i]!), 'same bytes on a second run').toEqual(Array.from(w));
      });
      expect(cpu[0]!.some((v) => v !== 0)).toBe(true);
      model.dispose();
    });
  }

  // Batch-norm gradients over few values per channel are ill-conditioned (MobileNetV2 at 32x32
  // ends at 1x1: four values per channel at batch 4, and rounding differences grow to 1e-2 between
  // two exact formulas on one backend), so parity is checked where statistics cover many values.
  for (const [arch, shape] of [['resnet-small', [16, 16, 3]], ['mini-xception', [24, 24, 1]]] as const) {
    it(`training mode (${arch}): batch statistics, moving averages updated as tfjs-layers updates them, gradients equal its own training call on cpu`, async () => {
      const build = () => {
        const m = buildArchitecture(arch, { inputShape: [...shape], seed: 9 });
        randomizeStatistics(m, 12);
        return m;
      };
      const ours = build();
      const theirs = build();
      const compiled = compileModel(ours);
      const run = (m: tf.LayersModel, f: (t: tf.Tensor) => tf.Tensor) => trainingCall(m, f, shape, 4);
      const before = tf.memory().numTensors;
      const wasm = await onBackend('wasm', run(ours, (t) => compiled.forward(t, true)));
      expect(tf.memory().numTensors).toBe(before);
      const cpu = await onBackend('cpu', run(theirs, (t) => theirs.apply(t, { training: true }) as tf.Tensor));
      expect(wasm.length).toBe(cpu.length);
      wasm.forEach((w, i) => expect(relError(w, cpu[i]!), `output ${i} of ${wasm.length}`).toBeLessThanOrEqual(1e-4));
      ours.dispose();
      theirs.dispose();
    });
  }

  it('training mode on wasm: batch norm\'s gradient never tiles, convs stay fused', async () => {
    await useBackend('wasm');
    const model = buildArchitecture('mobilenet-v2', { inputShape: [32, 32, 3], alpha: 0.35, seed: 9 });
    const compiled = compileModel(model);
    const x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 2);
    const profile = await tf.profile(() => tf.variableGrads(() => tf.sum(compiled.forward(x, true)) as tf.Scalar).value);
    expect(profile.kernelNames).not.toContain('Tile');
    expect(profile.kernelNames).toContain('AdvkitDepthwiseConv2D');
    tf.dispose([x, profile.result as tf.Tensor]);
    model.dispose();
  });

  it('on wasm, an input gradient computes no weight gradient and no batch-norm tile (the kernels that run)', async () => {
    await useBackend('wasm');
    const model = buildArchitecture('mobilenet-v2', { inputShape: [32, 32, 3], alpha: 0.35, seed: 1 });
    const c = fromLayersModel(model);
    const x = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    c.logits(x).dispose(); // fold the batch norms once
    const profile = await tf.profile(() => tf.grad((t: tf.Tensor) => tf.sum(c.logits(t as tf.Tensor4D)))(x));
    (profile.result as tf.Tensor).dispose();
    const names = new Set(profile.kernelNames);
    for (const absent of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'Tile', 'FusedBatchNorm', 'LogicalAnd']) {
      expect(names.has(absent), absent).toBe(false);
    }
    expect(names.has('AdvkitDepthwiseConv2D')).toBe(true);
    x.dispose();
    model.dispose();
  });

  it('a model with a layer the compiler does not know compiles around it and matches predict', async () => {
    await useBackend('wasm');
    const input = tf.input({ shape: [8, 8, 3] });
    let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }).apply(input) as tf.SymbolicTensor;
    x = tf.layers.layerNormalization().apply(x) as tf.SymbolicTensor;
    x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3 }).apply(x) as tf.SymbolicTensor });
    const compiled = compileModel(model);
    expect(compiled.report.fallbacks).toBe(1);
    expect(compiled.report.nodes.find((n) => !n.compiled)).toMatchObject({ source: 'LayerNormalization', reason: expect.stringMatching(/not compiled/) });
    expect(compiled.report.nodes.filter((n) => n.compiled).map((n) => n.op)).toEqual(expect.arrayContaining(['conv', 'dense']));
    const t = tf.tensor4d(uniform(2 * 8 * 8 * 3, 5, 0, 1), [2, 8, 8, 3]);
    const ours = tf.tidy(() => compiled.forward(t, false));
    const theirs = model.predict(t) as tf.Tensor;
    expect(relError(await ours.data(), await theirs.data())).toBeLessThanOrEqual(1e-5);
    tf.dispose([t, ours, theirs]);
    model.dispose();
  });

  it('ThresholdedReLU compiles and is differentiable (tfjs has no gradient for its Greater): logits equal predict, the input gradient equals conv · mask on cpu; no leak', async () => {
    const input = tf.input({ shape: [6, 6, 2] });
    const conv = tf.layers.conv2d({ filters: 3, kernelSize: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }), biasInitializer: tf.initializers.constant({ value: 0.05 }) });
    const dense = tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) });
    const h = a(tf.layers.flatten(), a(tf.layers.thresholdedReLU({ theta: 0.1 }), a(conv, input)));
    const model = tf.model({ inputs: input, outputs: a(dense, h) });
    const x = uniform(2 * 6 * 6 * 2, 8, 0, 1);
    const r = uniform(2 * 4, 9);
    await useBackend('wasm');
    const compiled = compileModel(model);
    expect(compiled.report.fallbacks).toBe(0);
    const xt = tf.tensor4d(x, [2, 6, 6, 2]);
    const ours = tf.tidy(() => compiled.forward(xt, false));
    const theirs = model.predict(xt) as tf.Tensor;
    expect(relError(await ours.data(), await theirs.data())).toBeLessThanOrEqual(1e-5);
    tf.dispose([xt, ours, theirs]);
    const before = tf.memory().numTensors;
    const [dx] = await onBackend('wasm', () => [tf.grad((t: tf.Tensor) => tf.sum(tf.mul(compiled.forward(t, false), tf.tensor2d(r, [2, 4]))) as tf.Scalar)(tf.tensor4d(x, [2, 6, 6, 2]))]);
    expect(tf.memory().numTensors).toBe(before);
    // The reference: the mask (pre-activation > theta) taken outside the gradient, then conv · mask.
    const [ref] = await onBackend('cpu', () => {
      const xc = tf.tensor4d(x, [2, 6, 6, 2]);
      const mask = tf.cast(tf.greater(conv.apply(xc) as tf.Tensor, 0.1), 'float32');
      const f = (t: tf.Tensor) => tf.sum(tf.mul(dense.apply(tf.reshape(tf.mul(conv.apply(t) as tf.Tensor, mask), [2, -1])) as tf.Tensor, tf.tensor2d(r, [2, 4]))) as tf.Scalar;
      return [tf.grad(f)(xc)];
    });
    expect(ref!.some((v) => v !== 0)).toBe(true);
    expect(relError(dx!, ref!)).toBeLessThanOrEqual(1e-4);
    model.dispose();
  });

  it('dilated convs: Conv2D dilation is honoured and differentiable (tfjs has no gradient for it); DepthwiseConv2D dilation is ignored as tfjs-layers ignores it, with a note', async () => {
    await useBackend('cpu');
    const input = tf.input({ shape: [9, 9, 2] });
    let h = tf.layers.conv2d({ filters: 3, kernelSize: 3, dilationRate: [2, 3], padding: 'same', biasInitializer: 'randomNormal' }).apply(input) as tf.SymbolicTensor;
    h = tf.layers.depthwiseConv2d({ kernelSize: 3, dilationRate: 2, padding: 'valid' }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2 }).apply(tf.layers.flatten().apply(h)) as tf.SymbolicTensor });
    const compiled = compileModel(model);
    expect(compiled.report.fallbacks).toBe(0);
    expect(compiled.report.notes).toEqual([expect.stringMatching(/DepthwiseConv2D .* dilationRate \[2,2\], which tfjs-layers ignores/)]);
    const x = tf.tensor4d(uniform(9 * 9 * 2, 4, 0, 1), [1, 9, 9, 2]);
    expect(relError(await compiled.forward(x, false).data(), await (model.predict(x) as tf.Tensor).data())).toBeLessThanOrEqual(1e-6);
    expect(() => tf.grad((t: tf.Tensor) => tf.sum(model.apply(t) as tf.Tensor))(x)).toThrow(/dilation/);
    // The input gradient against central differences (float32 on cpu, so a loose bound).
    const loss = (t: tf.Tensor) => tf.sum(tf.mul(compiled.forward(t, false), tf.tensor([[1, -2]]))) as tf.Scalar;
    const g = await tf.grad(loss)(x).data();
    const xs = await x.data();
    for (const i of [0, 17, 40, 81, 123, 161]) {
      const bump = (d: number) => { const v = Float32Array.from(xs); v[i]! += d; return loss(tf.tensor4d(v, [1, 9, 9, 2])).dataSync()[0]!; };
      expect(g[i]!, `d/dx[${i}]`).toBeCloseTo((bump(1e-2) - bump(-1e-2)) / 2e-2, 2);
    }
    await useBackend('wasm');
    const xw = tf.tensor4d(Array.from(xs), [1, 9, 9, 2]);
    const gw = await tf.grad(loss)(xw).data();
    expect(relError(gw, g)).toBeLessThanOrEqual(1e-4);
    model.dispose();
  });

  it('on small maps the fused convs run with the taps that read input only (1x1 filters on 1x1 maps), and attack steps reuse the cropped filter', async () => {
    await useBackend('wasm');
    const model = tinyMapsModel();
    const compiled = compileModel(model);
    const x = tf.randomUniform([2, 4, 4, 3], 0, 1, 'float32', 5);
    const step = () => tf.grad((t: tf.Tensor) => tf.sum(compiled.forward(t, false)))(x);
    const warmUp = step();
    // (Kernels run inside advkit's kernels are not in tf.profile: count the 2-D Transposes there.)
    const transpose = tf.getKernel('Transpose', 'wasm')!;
    let transposes = 0;
    tf.unregisterKernel('Transpose', 'wasm');
    tf.registerKernel({ ...transpose, kernelFunc: (args) => { if (args.inputs.x!.shape.length === 2) transposes++; return transpose.kernelFunc(args); } });
    let profile!: Awaited<ReturnType<typeof tf.profile>>;
    let third!: Awaited<ReturnType<typeof tf.profile>>;
    let built = -1;
    try {
      profile = await tf.profile(() => step());
      built = transposes;
      transposes = 0;
      third = await tf.profile(() => step());
    } finally {
      tf.unregisterKernel('Transpose', 'wasm');
      tf.registerKernel(transpose);
    }
    const filters = profile.kernels.filter((k) => k.name === 'AdvkitConv2D' || k.name === 'AdvkitDepthwiseConv2D').map((k) => k.inputShapes[1]!.slice(0, 2).join('x'));
    // 3x3/2 onto 1x1 keeps 2x2; 3x3 on 1x1 keeps 1x1 (conv and depthwise); 7x7 on 3x2 keeps 5x3.
    expect(filters).toEqual(['3x3', '2x2', '1x1', '1x1', '1x1']);
    // 3x3 on 2x2 (4 positions, 9 taps) and the cropped 5x3 on 3x2 (6 positions, 15 taps) run as
    // one dense product each: x [2, positions·ci] times the expanded weights.
    const expanded = profile.kernels.filter((k) => k.name === 'AdvkitExpandConv').map((k) => k.inputShapes[0]!.join('x'));
    expect(expanded).toEqual(['3x3x6x6', '5x3x6x4']);
    expect(profile.kernels.filter((k) => k.name === '_FusedMatMul' || k.name === 'AdvkitDense').length).toBeGreaterThanOrEqual(3);
    // The second step slices no filter: the crop kernel hands back the filter it cropped before
    // (the one Slice left is the concatenation's gradient, on [2, 8] activations).
    const filterShapes = new Set(model.weights.filter((w) => w.shape.length === 4).map((w) => w.shape.join('x')));
    const slices = profile.kernels.filter((k) => k.name === 'Slice').map((k) => k.inputShapes[0]!.join('x'));
    expect(slices.filter((sh) => filterShapes.has(sh))).toEqual([]);
    expect(profile.kernels.filter((k) => k.name === 'AdvkitCropFilter')).toHaveLength(5);
    // The dense products' input gradients (the two convs run as dense products and the last Dense
    // layer) multiply by a transposed copy of their weights kept from the second step on: built
    // in the second step, reused in the third. Every step's gradient is the same, bit for bit
    // (XNNPACK sums each product in the same order whichever operand is transposed), so results
    // do not depend on which call first saw a kernel (batch splits, worker counts).
    expect(built).toBe(3);
    expect(transposes).toBe(0);
    expect(third.kernels.filter((k) => k.name === 'AdvkitDenseInputGrad')).toHaveLength(3);
    expect(Array.from(await (third.result as tf.Tensor).data())).toEqual(Array.from(await (profile.result as tf.Tensor).data()));
    expect(Array.from(await (third.result as tf.Tensor).data())).toEqual(Array.from(await warmUp.data()));
    tf.dispose([x, warmUp, profile.result as tf.Tensor, third.result as tf.Tensor]);
    compiled.dispose();
    model.dispose();
  });

  it('random conv shapes (maps 1-5, kernels 1-7, strides 1-3, same or explicit padding, conv and depthwise, with or without bias, linear/relu/relu6): logits, input and weight gradients equal the layer\'s own on wasm, many with cropped taps, many as one dense product', async () => {
    await useBackend('wasm');
    const rng = new Rng(7);
    const ri = (a: number, b: number) => a + Math.floor(rng.next() * (b - a + 1));
    let checked = 0;
    let cropped = 0;
    let dense = 0;
    while (checked < 40) {
      const [h, w, kh, kw, s] = [ri(1, 5), ri(1, 5), ri(1, 7), ri(1, 7), ri(1, 3)];
      const depthwise = rng.next() < 0.3;
      const explicit = rng.next() < 0.5;
      const pads: [[number, number], [number, number]] = [[ri(0, 4), ri(0, 4)], [ri(0, 4), ri(0, 4)]];
      if (explicit && (h + pads[0][0] + pads[0][1] < kh || w + pads[1][0] + pads[1][1] < kw)) continue;
      const input = tf.input({ shape: [h, w, 2] });
      const padded = explicit ? tf.layers.zeroPadding2d({ padding: pads }).apply(input) as tf.SymbolicTensor : input;
      const activation = (['linear', 'relu', 'relu6'] as const)[ri(0, 2)];
      const useBias = rng.next() < 0.7;
      const options = { kernelSize: [kh, kw] as [number, number], strides: s, padding: explicit ? 'valid' as const : 'same' as const, biasInitializer: 'ones' as const, activation, useBias };
      const conv = (depthwise ? tf.layers.depthwiseConv2d(options) : tf.layers.conv2d({ ...options, filters: 3 })).apply(padded) as tf.SymbolicTensor;
      const model = tf.model({ inputs: input, outputs: tf.layers.flatten().apply(conv) as tf.SymbolicTensor });
      const compiled = compileModel(model);
      const x = tf.tensor4d(uniform(2 * h * w * 2, checked + 100), [2, h, w, 2]);
      const r = tf.tensor(uniform(2 * (model.outputs[0]!.shape[1] as number), checked + 200), [2, model.outputs[0]!.shape[1] as number]);
      const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
      const all = (f: (t: tf.Tensor) => tf.Tensor) => tf.tidy(() => {
        const loss = (t: tf.Tensor) => tf.sum(tf.mul(f(t), r)) as tf.Scalar;
        const { grads } = tf.variableGrads(() => loss(x), vars);
        return [f(x), tf.grad(loss)(x), ...vars.map((v) => grads[v.name]!)].map((t) => t.dataSync());
      });
      const profile = await tf.profile(() => compiled.forward(x, false));
      if (profile.kernels.some((k) => k.name === 'AdvkitCropFilter')) cropped++;
      if (profile.kernels.some((k) => k.name === 'AdvkitExpandConv')) dense++;
      const ours = all((t) => compiled.forward(t, false));
      const theirs = all((t) => model.apply(t) as tf.Tensor);
      ours.forEach((o, i) => expect(relError(o, theirs[i]!), `${JSON.stringify({ h, w, kh, kw, s, depthwise, explicit, pads, activation, useBias })} output ${i}`).toBeLessThanOrEqual(1e-4));
      tf.dispose([x, r, profile.result as tf.Tensor]);
      model.dispose();
      checked++;
    }
    expect(cropped).toBeGreaterThan(10);
    expect(dense).toBeGreaterThan(10);
  });

  it('a nested backbone is inlined once per call; it survives save and load (the Keras transfer-learning export)', async () => {
    await useBackend('wasm');
    const input = tf.input({ shape: [8, 8, 3] });
    const backbone = smallBackbone([8, 8, 3]);
    const pooled = tf.layers.globalAveragePooling2d({}).apply(backbone.apply(input)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor });
    randomizeStatistics(model, 5);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => { artifacts = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(loaded.layers.some((l) => l instanceof tf.LayersModel), 'the loaded model keeps its nested model').toBe(true);
    const compiled = compileModel(loaded);
    expect(compiled.report.fallbacks).toBe(0);
    expect(compiled.report.outputKind).toBe('softmax-cut');
    const convs = compiled.report.nodes.filter((n) => n.op === 'conv' || n.op === 'depthwise conv');
    expect(convs.map((n) => n.name.split('/')[0])).toEqual(convs.map(() => backbone.name));
    expect(convs.filter((n) => n.fused?.includes('batch norm folded'))).toHaveLength(2);
    const x = tf.tensor4d(uniform(2 * 8 * 8 * 3, 6, 0, 1), [2, 8, 8, 3]);
    const probs = tf.tidy(() => tf.softmax(compiled.forward(x, false)));
    const theirs = loaded.predict(x) as tf.Tensor;
    expect(relError(await probs.data(), await theirs.data())).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, probs, theirs]);
    model.dispose();
    loaded.dispose();
  });

  it('a final softmax (Activation, Dense activation or Softmax layer) is cut and its input attacked', async () => {
    await useBackend('wasm');
    const model = buildArchitecture('mini-xception', { inputShape: [16, 16, 1], numClasses: 4, softmax: true, seed: 2 });
    const c = fromLayersModel(model);
    expect(c.output?.kind).toBe('softmax-cut');
    expect(c.output?.detail).toMatch(/'predictions'/);
    expect(c.warnings).toEqual([]);
    const x = tf.tensor4d(uniform(2 * 256, 9, 0, 1), [2, 16, 16, 1]);
    const probs = tf.tidy(() => tf.softmax(c.logits(x)));
    const theirs = model.predict(x) as tf.Tensor;
    expect(relError(await probs.data(), await theirs.data())).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, probs, theirs]);
    const dense = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3, activation: 'softmax' })] });
    expect(fromLayersModel(dense).output?.kind).toBe('softmax-cut');
    const layer = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3 }), tf.layers.softmax()] });
    expect(fromLayersModel(layer).output?.kind).toBe('softmax-cut');
    tf.dispose([model, dense, layer].map((m) => { m.dispose(); return []; }).flat());
  });

  it('one sigmoid unit becomes the two logits [0, z] with the same decisions; several sigmoid units are refused', async () => {
    await useBackend('wasm');
    const detector = tf.sequential({ layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu' }), tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 1, activation: 'sigmoid' }),
    ] });
    const c = fromLayersModel(detector);
    expect(c.numClasses).toBe(2);
    expect(c.output?.kind).toBe('sigmoid-binary');
    const x = tf.tensor4d(uniform(6 * 192, 3, 0, 1), [6, 8, 8, 3]);
    const logits = c.logits(x);
    const p = detector.predict(x) as tf.Tensor;
    const [l, pv] = [await logits.data(), await p.data()];
    for (let i = 0; i < 6; i++) {
      expect(l[2 * i]).toBe(0);
      expect(1 / (1 + Math.exp(-l[2 * i + 1]!))).toBeCloseTo(pv[i]!, 6);
    }
    tf.dispose([x, logits, p]);
    const multi = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [2, 2, 1] }), tf.layers.dense({ units: 3, activation: 'sigmoid' })] });
    expect(() => fromLayersModel(multi)).toThrow(/multi-label/);
    const regression = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [2, 2, 1] }), tf.layers.dense({ units: 1 })] });
    expect(() => fromLayersModel(regression)).toThrow(/1 unit/);
    detector.dispose();
    multi.dispose();
    regression.dispose();
  });
});

describe('GraphModels through the compiler', () => {
  const run = (g: tf.GraphModel) => (x: tf.Tensor) => g.execute(x, 'fc') as tf.Tensor;

  it('converter ops (fused conv/depthwise/matmul, FusedBatchNormV3, AddV2, Mean, explicit padding) compile whole; logits and input gradients equal the executor on cpu', async () => {
    await useBackend('wasm');
    const g = await converterClassifier('logits');
    const compiled = compileModel(g);
    expect(compiled.report.fallbacks, JSON.stringify(compiled.report.nodes)).toBe(0);
    expect(compiled.report.merged.join('\n')).toMatch(/FusedBatchNormV3 'bn' folded into 'pw'/);
    const x = () => tf.tensor4d(uniform(3 * 192, 4, 0, 1), [3, 8, 8, 3]);
    const grad = (f: (t: tf.Tensor) => tf.Tensor) => () => {
      const t = x();
      return [tf.grad((u: tf.Tensor) => tf.sum(tf.mul(f(u), tf.range(1, 5))))(t), f(t)];
    };
    const before = tf.memory().numTensors;
    const wasm = await onBackend('wasm', grad((t) => compiled.forward(t, false)));
    expect(tf.memory().numTensors).toBe(before);
    const cpu = await onBackend('cpu', grad(run(g)));
    wasm.forEach((w, i) => expect(relError(w, cpu[i]!), `output ${i}`).toBeLessThanOrEqual(1e-4));
    expect(cpu[0]!.some((v) => v !== 0)).toBe(true);
    const wasmPredict = await onBackend('wasm', () => [compiled.forward(x(), false), g.predict(x()) as tf.Tensor]);
    expect(relError(wasmPredict[0]!, wasmPredict[1]!)).toBeLessThanOrEqual(1e-5);
  });

  // The reference is the executor on cpu: stock tfjs-wasm's _FusedMatMul with transpose_b gets
  // every row after the first wrong (4.22.0; 0.52 for 0.44 here), which the compiled path avoids.
  it('MatMul with transpose_b compiles through a transposed copy of the weights (equal to the executor on cpu), which dispose() frees', async () => {
    await useBackend('wasm');
    const g = await converterClassifier('transposed');
    const before = tf.memory().numTensors;
    const compiled = compileModel(g);
    expect(compiled.report.fallbacks).toBe(0);
    expect(tf.memory().numTensors).toBe(before + 1);
    const x = () => tf.tensor4d(uniform(2 * 192, 12, 0, 1), [2, 8, 8, 3]);
    const [ours] = await onBackend('wasm', () => [compiled.forward(x(), false)]);
    const [theirs] = await onBackend('cpu', () => [g.predict(x()) as tf.Tensor]);
    expect(relError(ours!, theirs!)).toBeLessThanOrEqual(1e-5);
    await useBackend('wasm');
    compiled.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(compileModel(g)).not.toBe(compiled);
  });

  it('a Softmax-ended graph is attacked through the logits before the Softmax', async () => {
    await useBackend('wasm');
    const g = await converterClassifier('softmax');
    const c = fromGraphModel(g);
    expect(c.output?.kind).toBe('softmax-cut');
    expect(c.numClasses).toBe(4);
    const x = tf.tensor4d(uniform(2 * 192, 6, 0, 1), [2, 8, 8, 3]);
    const [ours, theirs] = [c.logits(x), g.execute(x, 'fc') as tf.Tensor];
    expect(relError(await ours.data(), await theirs.data())).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, ours, theirs]);
  });

  it('a one-sigmoid detector graph becomes a two-class classifier with logits [0, z]', async () => {
    await useBackend('wasm');
    const g = await converterClassifier('sigmoid');
    const c = fromGraphModel(g);
    expect(c.numClasses).toBe(2);
    expect(c.output?.kind).toBe('sigmoid-binary');
    const x = tf.tensor4d(uniform(2 * 192, 7, 0, 1), [2, 8, 8, 3]);
    const [ours, z] = [c.logits(x), g.execute(x, 'fc') as tf.Tensor];
    const [o, zv] = [await ours.data(), await z.data()];
    expect(Array.from(o)).toEqual([0, zv[0]!, 0, zv[1]!].map((v) => Math.fround(v)));
    tf.dispose([x, ours, z]);
  });

  it('a graph with an integer image input is refused with a ModelError naming the input and its dtype (attacks perturb float32 images)', async () => {
    await useBackend('wasm');
    for (const dtype of ['DT_INT32', 'DT_UINT8'] as const) {
      const g = await graphModel([
        { name: 'cast', op: 'Cast', input: ['pixels'], attr: { SrcT: { type: dtype }, DstT: { type: 'DT_FLOAT' } } },
        { name: 'flat', op: 'Reshape', input: ['cast', 'shape'], attr: { T: { type: 'DT_FLOAT' } } },
        { name: 'fc', op: 'MatMul', input: ['flat', 'w'], attr: { T: { type: 'DT_FLOAT' } } },
      ], [{ name: 'shape', shape: [2], values: new Int32Array([-1, 12]), dtype: 'int32' }, { name: 'w', shape: [12, 3], values: uniform(36, 3) }],
      { name: 'pixels', shape: [-1, 2, 2, 3], dtype });
      expect(() => fromGraphModel(g)).toThrow(ModelError);
      expect(() => fromGraphModel(g)).toThrow(new RegExp(`input 'pixels' is ${dtype === 'DT_INT32' ? 'int32' : '(uint8|int32)'}.*re-export the model with a float32 input`));
      g.dispose();
    }
  });

  it('fused LeakyRelu (leakyrelu_alpha) and Prelu (slopes after the bias), and a standalone Prelu op, compile whole; logits and input gradients equal the executor on cpu', async () => {
    const g = await converterClassifier('leaky');
    const compiled = compileModel(g);
    expect(compiled.report.fallbacks, JSON.stringify(compiled.report.nodes.filter((n) => !n.compiled))).toBe(0);
    expect(compiled.report.nodes.map((n) => n.op)).toEqual(expect.arrayContaining(['leaky_relu', 'prelu']));
    const grads = (f: (t: tf.Tensor) => tf.Tensor) => () => {
      const t = tf.tensor4d(uniform(3 * 192, 14, -1, 1), [3, 8, 8, 3]);
      return [f(t), tf.grad((u: tf.Tensor) => tf.sum(tf.mul(f(u), tf.range(1, 5))))(t)];
    };
    const ours = await onBackend('wasm', grads((t) => compiled.forward(t, false)));
    const theirs = await onBackend('cpu', grads(run(g)));
    expect(relError(ours[0]!, theirs[0]!)).toBeLessThanOrEqual(1e-5);
    expect(relError(ours[1]!, theirs[1]!)).toBeLessThanOrEqual(1e-4);
  });

  it('Keras Flatten as TF2 exports it (Reshape to [Shape(x)[0], -1] through StridedSlice and Pack) compiles to a reshape; logits and input gradients equal the executor on cpu', async () => {
    const g = await converterClassifier('flatten');
    const compiled = compileModel(g);
    expect(compiled.report.fallbacks, JSON.stringify(compiled.report.nodes.filter((n) => !n.compiled))).toBe(0);
    expect(compiled.report.nodes.find((n) => n.source === 'Reshape')?.op).toBe('reshape');
    for (const batch of [1, 3]) {
      const x = () => tf.tensor4d(uniform(batch * 192, 12, 0, 1), [batch, 8, 8, 3]);
      const grads = (f: (t: tf.Tensor) => tf.Tensor) => () => { const t = x(); return [f(t), tf.grad((u: tf.Tensor) => tf.sum(tf.mul(f(u), tf.range(1, 5))))(t)]; };
      const ours = await onBackend('wasm', grads((t) => compiled.forward(t, false)));
      const theirs = await onBackend('cpu', grads(run(g)));
      expect(relError(ours[0]!, theirs[0]!)).toBeLessThanOrEqual(1e-5);
      expect(relError(ours[1]!, theirs[1]!)).toBeLessThanOrEqual(1e-4);
    }
  });

  it('an op the compiler does not know runs through the GraphModel executor for that node only', async () => {
    await useBackend('wasm');
    const g = await converterClassifier('neg');
    const compiled = compileModel(g);
    expect(compiled.report.fallbacks).toBe(1);
    expect(compiled.report.nodes.find((n) => !n.compiled)).toMatchObject({ source: 'Neg' });
    const x = tf.tensor4d(uniform(2 * 192, 8, 0, 1), [2, 8, 8, 3]);
    const ours = tf.tidy(() => compiled.forward(x, false));
    const theirs = g.predict(x) as tf.Tensor;
    expect(relError(await ours.data(), await theirs.data())).toBeLessThanOrEqual(1e-5);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(compiled.forward(t, false)))(x);
    expect((await dx.data()).some((v) => v !== 0)).toBe(true);
    tf.dispose([x, ours, theirs, dx]);
  });
});
