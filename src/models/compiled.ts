/**
 * A LayersModel's forward pass through the model compiler (models/compiler): on wasm, advkit's
 * fused ops; elsewhere the same graph as tfjs ops. The compiled forward returns logits (a final
 * softmax is cut; one sigmoid unit becomes two logits). A model whose structure does not compile
 * (several inputs or outputs) runs through its own `apply`.
 */
import type * as tf from '@tensorflow/tfjs';
import { compileModel } from './compiler/index.js';

type Forward = (x: tf.Tensor, training: boolean) => tf.Tensor;
const refused = new WeakSet<tf.LayersModel>();

/** The model's compiled forward function (logits), or null when its structure does not compile. */
export function compiledForward(model: tf.LayersModel): Forward | null {
  if (refused.has(model)) return null;
  try {
    return compileModel(model).forward;
  } catch {
    refused.add(model);
    return null;
  }
}

/** The model's logits for x, through the compiler where the model compiles, else `model.apply`. */
export function forward(model: tf.LayersModel, x: tf.Tensor, training: boolean): tf.Tensor {
  const f = compiledForward(model);
  return f ? f(x, training) : (model.apply(x, { training }) as tf.Tensor);
}
