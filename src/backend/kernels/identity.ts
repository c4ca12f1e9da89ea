import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, type TensorInfo } from './heap.js';

/**
 * Identity shares the input's data (a reference count), as the cpu and webgl backends do;
 * stock wasm copies it, and tfjs clones every tensor it saves for the backward pass.
 */
export function identity({ inputs, backend }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export const identityConfig: tf.KernelConfig = { kernelName: 'Identity', backendName: 'wasm', kernelFunc: identity as unknown as tf.KernelFunc };
