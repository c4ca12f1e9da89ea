/**
 * Architectures, each a LayersModel that outputs logits, with seeded initializers (the same
 * seed gives the same weights, byte for byte).
 *
 * - `mnist-cnn`: the reference CNN of DESIGN.md: conv 32@3x3 relu, maxpool 2, conv 64@3x3
 *   relu, maxpool 2, dense 128 relu, dense 10.
 * - `madry-cnn`: Madry et al. 2018 ("Towards Deep Learning Models Resistant to Adversarial
 *   Attacks", arXiv:1706.06083), MNIST: conv 32@5x5, pool, conv 64@5x5, pool, dense 1024.
 * - `lenet5`: LeCun et al. 1998 with ReLU: conv 6@5x5 same, avgpool, conv 16@5x5, avgpool,
 *   dense 120, dense 84.
 * - `mlp`: two hidden dense layers of 256.
 * - `resnet-small`: a small residual network for 32x32x3 inputs (He et al. 2016, arXiv:1512.03385):
 *   conv 16 + BN, three stages of one basic block (16, 32/2, 64/2), global average pool.
 *
 * In the Keras export style (functional graphs with BatchNormalization eps 1e-3, ReLU(6),
 * ZeroPadding2D before valid stride-2 convs), the models people bring, for tests and benchmarks:
 * - `mobilenet-v2`: Sandler et al. 2018 ("MobileNetV2: Inverted Residuals and Linear
 *   Bottlenecks", arXiv:1801.04381) as keras.applications builds it: width multiplier `alpha`
 *   (1.0, 0.35, ...), any input size (224 default), 1280-d head. Default input 224x224x3.
 * - `resnet-18`: He et al. 2016, basic blocks [2, 2, 2, 2] of 64-512 filters. Inputs under 100
 *   pixels get the CIFAR form (3x3 stem, no pooling), larger ones the ImageNet form (7x7/2 stem
 *   and 3x3/2 max pool); stride-2 convs are ZeroPadding2D(1) + valid, as in PyTorch's weights.
 *   Default input 32x32x3.
 * - `mini-xception`: Arriaga et al. 2017 ("Real-time Convolutional Neural Networks for Emotion and
 *   Gender Classification", arXiv:1710.07557): two 8-filter convs, four residual modules of
 *   separable convs (16-128) with 3x3/2 max pools, a conv to the classes and global average
 *   pooling. Default input 64x64x1.
 * With `softmax: true` these three end in a softmax, as Keras exports them; advkit's classifiers
 * cut it (models/compiler).
 */
import * as tf from '@tensorflow/tfjs';
import { checkFiniteNumber, InvalidArgumentError, show } from '../util/errors.js';
import { deriveSeed } from '../util/random.js';
import type { ImageShape } from './classifier.js';

export interface ArchitectureOptions {
  inputShape?: ImageShape;
  numClasses?: number;
  /** Seed for the weight initializers. Default 0. */
  seed?: number;
  /** Width multiplier of mobilenet-v2 (default 1). */
  alpha?: number;
  /** End in a softmax as Keras applications do (mobilenet-v2, resnet-18, mini-xception; default false). */
  softmax?: boolean;
  /** resnet-18's stem: 'cifar' (3x3, no pooling), 'imagenet' (7x7/2 and a 3x3/2 max pool, as torchvision's resnet18), or 'auto' (cifar under 100 pixels; default). */
  variant?: 'auto' | 'cifar' | 'imagenet';
}

type Builder = (o: Required<ArchitectureOptions>) => tf.LayersModel;

class Init {
  private n = 0;
  constructor(private readonly seed: number) {}
  kernel(): ReturnType<typeof tf.initializers.glorotUniform> {
    return tf.initializers.glorotUniform({ seed: deriveSeed(this.seed, this.n++) % 2147483647 });
  }
}

function sequential(o: Required<ArchitectureOptions>, body: (init: Init, first: { inputShape: number[] }) => tf.layers.Layer[]): tf.LayersModel {
  const init = new Init(o.seed);
  const model = tf.sequential();
  for (const layer of body(init, { inputShape: [...o.inputShape] })) model.add(layer);
  model.add(tf.layers.dense({ units: o.numClasses, kernelInitializer: init.kernel(), name: 'logits' }));
  return model;
}

const conv = (init: Init, filters: number, k: number, extra: Record<string, unknown> = {}) =>
  tf.layers.conv2d({ filters, kernelSize: k, activation: 'relu', kernelInitializer: init.kernel(), ...extra });
const dense = (init: Init, units: number) => tf.layers.dense({ units, activation: 'relu', kernelInitializer: init.kernel() });

type T = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: T | T[]) => layer.apply(x) as T;
const bn = (x: T) => apply(tf.layers.batchNormalization({ epsilon: 1e-3, momentum: 0.999 }), x);
const relu6 = (x: T) => apply(tf.layers.reLU({ maxValue: 6 }), x);
const relu = (x: T) => apply(tf.layers.reLU(), x);

function head(x: T, o: Required<ArchitectureOptions>, init: Init, input: T): tf.LayersModel {
  let y = apply(tf.layers.globalAveragePooling2d({}), x);
  y = apply(tf.layers.dense({ units: o.numClasses, kernelInitializer: init.kernel(), name: 'logits' }), y);
  if (o.softmax) y = apply(tf.layers.activation({ activation: 'softmax', name: 'predictions' }), y);
  return tf.model({ inputs: input, outputs: y });
}

/** Keras' _make_divisible: v rounded to a multiple of 8, never below 90% of v. */
function divisible(v: number, divisor = 8): number {
  const n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return n < 0.9 * v ? n + divisor : n;
}

/** Keras' correct_pad: the zero padding before a valid 3x3 stride-2 conv ('same' on odd sizes). */
function correctPad(x: T): [[number, number], [number, number]] {
  const [h, w] = [x.shape[1] as number, x.shape[2] as number];
  return [[1 - (1 - (h % 2)), 1], [1 - (1 - (w % 2)), 1]];
}

function mobilenetV2(o: Required<ArchitectureOptions>): tf.LayersModel {
  const init = new Init(o.seed);
  const input = tf.input({ shape: [...o.inputShape] });
  const conv = (x: T, filters: number, k: number, stride = 1, padding: 'same' | 'valid' = 'same') =>
    apply(tf.layers.conv2d({ filters, kernelSize: k, strides: stride, padding, useBias: false, kernelInitializer: init.kernel() }), x);
  let x = relu6(bn(conv(input, divisible(32 * o.alpha), 3, 2)));
  const blocks: Array<[number, number, number]> = [ // filters, stride, expansion
    [16, 1, 1], [24, 2, 6], [24, 1, 6], [32, 2, 6], [32, 1, 6], [32, 1, 6], [64, 2, 6], [64, 1, 6], [64, 1, 6], [64, 1, 6],
    [96, 1, 6], [96, 1, 6], [96, 1, 6], [160, 2, 6], [160, 1, 6], [160, 1, 6], [320, 1, 6],
  ];
  blocks.forEach(([filters, stride, expansion], id) => {
    const inChannels = x.shape[3] as number;
    const out = divisible(Math.trunc(filters * o.alpha));
    let y = x;
    if (id > 0) y = relu6(bn(conv(y, expansion * inChannels, 1)));
    if (stride === 2) y = apply(tf.layers.zeroPadding2d({ padding: correctPad(y) }), y);
    y = apply(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, depthwiseInitializer: init.kernel() }), y);
    y = bn(conv(relu6(bn(y)), out, 1));
    x = inChannels === out && stride === 1 ? apply(tf.layers.add(), [x, y]) : y;
  });
  x = relu6(bn(conv(x, o.alpha > 1 ? divisible(1280 * o.alpha) : 1280, 1)));
  return head(x, o, init, input);
}

function resnet18(o: Required<ArchitectureOptions>): tf.LayersModel {
  const init = new Init(o.seed);
  const input = tf.input({ shape: [...o.inputShape] });
  const conv = (x: T, filters: number, k: number, stride: number) => {
    // Stride 2 as PyTorch pads (symmetric), the way Keras ports of its weights are built.
    const pad = stride === 2 && k > 1 ? apply(tf.layers.zeroPadding2d({ padding: (k - 1) / 2 }), x) : x;
    return apply(tf.layers.conv2d({ filters, kernelSize: k, strides: stride, padding: stride === 2 ? 'valid' : 'same', useBias: false, kernelInitializer: init.kernel() }), pad);
  };
  const cifar = o.variant === 'auto' ? o.inputShape[0] < 100 : o.variant === 'cifar';
  let x = cifar ? relu(bn(conv(input, 64, 3, 1))) : relu(bn(conv(input, 64, 7, 2)));
  if (!cifar) x = apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid' }), apply(tf.layers.zeroPadding2d({ padding: 1 }), x));
  [64, 128, 256, 512].forEach((filters, stage) => {
    for (let b = 0; b < 2; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const y = bn(conv(relu(bn(conv(x, filters, 3, stride))), filters, 3, 1));
      const shortcut = stride === 1 && (x.shape[3] as number) === filters ? x : bn(conv(x, filters, 1, stride));
      x = relu(apply(tf.layers.add(), [y, shortcut]));
    }
  });
  return head(x, o, init, input);
}

function miniXception(o: Required<ArchitectureOptions>): tf.LayersModel {
  const init = new Init(o.seed);
  const input = tf.input({ shape: [...o.inputShape] });
  const act = (x: T) => apply(tf.layers.activation({ activation: 'relu' }), x);
  const conv = (x: T, filters: number, k: number, stride = 1, padding: 'same' | 'valid' = 'valid') =>
    apply(tf.layers.conv2d({ filters, kernelSize: k, strides: stride, padding, useBias: false, kernelInitializer: init.kernel() }), x);
  const sep = (x: T, filters: number) => apply(tf.layers.separableConv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: init.kernel(), pointwiseInitializer: init.kernel() }), x);
  let x = act(bn(conv(act(bn(conv(input, 8, 3))), 8, 3)));
  for (const filters of [16, 32, 64, 128]) {
    const residual = bn(conv(x, filters, 1, 2, 'same'));
    let y = bn(sep(act(bn(sep(x, filters))), filters));
    y = apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }), y);
    x = apply(tf.layers.add(), [y, residual]);
  }
  x = apply(tf.layers.conv2d({ filters: o.numClasses, kernelSize: 3, padding: 'same', kernelInitializer: init.kernel() }), x);
  x = apply(tf.layers.globalAveragePooling2d({}), x);
  if (o.softmax) x = apply(tf.layers.activation({ activation: 'softmax', name: 'predictions' }), x);
  return tf.model({ inputs: input, outputs: x });
}

const BUILDERS: Record<string, Builder> = {
  'mnist-cnn': (o) => sequential(o, (init, first) => [
    conv(init, 32, 3, first), tf.layers.maxPooling2d({ poolSize: 2 }),
    conv(init, 64, 3), tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.flatten(), dense(init, 128),
  ]),
  'madry-cnn': (o) => sequential(o, (init, first) => [
    conv(init, 32, 5, { ...first, padding: 'same' }), tf.layers.maxPooling2d({ poolSize: 2 }),
    conv(init, 64, 5, { padding: 'same' }), tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.flatten(), dense(init, 1024),
  ]),
  lenet5: (o) => sequential(o, (init, first) => [
    conv(init, 6, 5, { ...first, padding: 'same' }), tf.layers.averagePooling2d({ poolSize: 2 }),
    conv(init, 16, 5), tf.layers.averagePooling2d({ poolSize: 2 }),
    tf.layers.flatten(), dense(init, 120), dense(init, 84),
  ]),
  mlp: (o) => sequential(o, (init, first) => [tf.layers.flatten(first), dense(init, 256), dense(init, 256)]),
  'resnet-small': (o) => {
    const init = new Init(o.seed);
    const input = tf.input({ shape: [...o.inputShape] });
    const convBn = (x: tf.SymbolicTensor, filters: number, k: number, stride: number, relu: boolean) => {
      let y = tf.layers.conv2d({ filters, kernelSize: k, strides: stride, padding: 'same', useBias: false, kernelInitializer: init.kernel() }).apply(x) as tf.SymbolicTensor;
      y = tf.layers.batchNormalization().apply(y) as tf.SymbolicTensor;
      return relu ? (tf.layers.reLU().apply(y) as tf.SymbolicTensor) : y;
    };
    let x = convBn(input, 16, 3, 1, true);
    for (const [filters, stride] of [[16, 1], [32, 2], [64, 2]] as const) {
      const y = convBn(convBn(x, filters, 3, stride, true), filters, 3, 1, false);
      const shortcut = stride === 1 && filters === (x.shape[3] as number) ? x : convBn(x, filters, 1, stride, false);
      x = tf.layers.reLU().apply(tf.layers.add().apply([y, shortcut]) as tf.SymbolicTensor) as tf.SymbolicTensor;
    }
    x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: o.numClasses, kernelInitializer: init.kernel(), name: 'logits' }).apply(x) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out });
  },
  'mobilenet-v2': mobilenetV2,
  'resnet-18': resnet18,
  'mini-xception': miniXception,
};

export const ARCHITECTURES = Object.keys(BUILDERS);

const DEFAULT_SHAPE: Record<string, ImageShape> = { 'resnet-small': [32, 32, 3], 'mobilenet-v2': [224, 224, 3], 'resnet-18': [32, 32, 3], 'mini-xception': [64, 64, 1] };
/** Smallest input side each architecture takes (its downsampling must leave at least 1 pixel). */
const MIN_SIDE: Record<string, number> = { 'mobilenet-v2': 32, 'resnet-18': 8, 'mini-xception': 16 };

/** Builds an architecture by name (see the module comment); the model outputs logits. */
export function buildArchitecture(name: string, options: ArchitectureOptions = {}): tf.LayersModel {
  const builder = BUILDERS[name];
  if (!builder) {
    throw new InvalidArgumentError(`Error in buildArchitecture: unknown architecture ${show(name)}; use one of ${ARCHITECTURES.join(', ')}.`);
  }
  const inputShape = options.inputShape ?? DEFAULT_SHAPE[name] ?? [28, 28, 1];
  const numClasses = checkFiniteNumber('buildArchitecture', 'numClasses', options.numClasses ?? 10, { integer: true, min: 2 });
  const seed = checkFiniteNumber('buildArchitecture', 'seed', options.seed ?? 0, { integer: true, min: 0 });
  const side = MIN_SIDE[name] ?? 8;
  if (name !== 'mlp' && (inputShape[0] < side || inputShape[1] < side)) {
    throw new InvalidArgumentError(`Error in buildArchitecture: ${name} needs images of at least ${side}x${side}, but got [${inputShape.join(', ')}].`);
  }
  const alpha = checkFiniteNumber('buildArchitecture', 'alpha', options.alpha ?? 1, { min: 0.1 });
  const variant = options.variant ?? 'auto';
  if (!['auto', 'cifar', 'imagenet'].includes(variant)) throw new InvalidArgumentError(`Error in buildArchitecture: variant must be auto, cifar or imagenet, but got ${show(variant)}.`);
  return builder({ inputShape, numClasses, seed, alpha, softmax: options.softmax === true, variant });
}
