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
};

export const ARCHITECTURES = Object.keys(BUILDERS);

const DEFAULT_SHAPE: Record<string, ImageShape> = { 'resnet-small': [32, 32, 3] };

/** Builds an architecture by name (see the module comment); the model outputs logits. */
export function buildArchitecture(name: string, options: ArchitectureOptions = {}): tf.LayersModel {
  const builder = BUILDERS[name];
  if (!builder) {
    throw new InvalidArgumentError(`Error in buildArchitecture: unknown architecture ${show(name)}; use one of ${ARCHITECTURES.join(', ')}.`);
  }
  const inputShape = options.inputShape ?? DEFAULT_SHAPE[name] ?? [28, 28, 1];
  const numClasses = checkFiniteNumber('buildArchitecture', 'numClasses', options.numClasses ?? 10, { integer: true, min: 2 });
  const seed = checkFiniteNumber('buildArchitecture', 'seed', options.seed ?? 0, { integer: true, min: 0 });
  if (name !== 'mlp' && (inputShape[0] < 8 || inputShape[1] < 8)) {
    throw new InvalidArgumentError(`Error in buildArchitecture: ${name} needs images of at least 8x8, but got [${inputShape.join(', ')}].`);
  }
  return builder({ inputShape, numClasses, seed });
}
