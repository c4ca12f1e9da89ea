import * as tf from '@tensorflow/tfjs';
import { stock, type KernelArgs, type TensorInfo } from './heap.js';
import { identity } from './identity.js';

/** Cast to the same dtype shares the data too (stock wasm copies; ReLU's gradient casts every step). */
function cast({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  if (attrs.dtype === x.dtype) return identity({ inputs, backend, attrs: {} });
  return stock('Cast')({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
}

export const castConfig: tf.KernelConfig = { kernelName: 'Cast', backendName: 'wasm', kernelFunc: cast as unknown as tf.KernelFunc };
