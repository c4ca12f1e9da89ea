import * as tf from '@tensorflow/tfjs';
import { fromFunction, type Classifier } from '../../src/models/classifier.js';
import { uniform } from '../helpers.js';

/** A linear classifier logits = flatten(x) · W + b with seeded weights, for any image shape. */
export function linearModel(shape: [number, number, number], numClasses: number, seed: number, smooth = false): Classifier {
  const d = shape[0] * shape[1] * shape[2];
  const w = tf.keep(tf.tensor2d(uniform(d * numClasses, seed), [d, numClasses]));
  const b = tf.keep(tf.tensor1d(uniform(numClasses, seed + 1, -0.1, 0.1)));
  return fromFunction((x) => {
    const z = tf.add(tf.matMul(tf.reshape(x, [x.shape[0], d]), w), b) as tf.Tensor2D;
    return smooth ? (tf.mul(tf.tanh(z), 3) as tf.Tensor2D) : z;
  }, { numClasses, inputShape: shape });
}

export function images(n: number, shape: [number, number, number], seed: number): tf.Tensor4D {
  return tf.tensor4d(uniform(n * shape[0] * shape[1] * shape[2], seed, 0, 1), [n, ...shape]);
}
