/**
 * Activation masks of advkit's fused ops (backend/fused.ts): the gradient of a ReLU or a clamp to
 * [0, hi] (ReLU6) taken from its output in one SIMD pass (or a loop where SIMD cannot run).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heap, type TensorInfo } from './heap.js';
import { simdKernels } from '../simd.js';

/**
 * dy masked by a clamp to [0, hi] taken from its output y: 0 < y < hi ? dy : 0 (ReLU6 with hi = 6;
 * hi = Infinity is the ReLU mask).
 */
export function clampGradInto(backend: BackendWasm, dy: TensorInfo, y: TensorInfo, hi: number): TensorInfo {
  if (hi === Infinity) return reluGradInto(backend, dy, y);
  const out = backend.makeOutput(dy.shape, 'float32') as TensorInfo;
  const n = tf.util.sizeFromShape(dy.shape);
  const simd = simdKernels(backend);
  if (simd) {
    simd.clampGrad(dy, y, out, n, hi);
    return out;
  }
  const o = heap(backend, out);
  const g = heap(backend, dy);
  const v = heap(backend, y);
  for (let i = 0; i < n; i++) o[i] = v[i]! > 0 && v[i]! < hi ? g[i]! : 0;
  return out;
}

/** dy masked by a ReLU: y > 0 ? dy : 0, where y is the ReLU's input or output. */
export function reluGradInto(backend: BackendWasm, dy: TensorInfo, y: TensorInfo): TensorInfo {
  const out = backend.makeOutput(dy.shape, 'float32') as TensorInfo;
  const n = tf.util.sizeFromShape(dy.shape);
  const simd = simdKernels(backend);
  if (simd) {
    simd.reluGrad(dy, y, out, n);
    return out;
  }
  const o = heap(backend, out);
  const g = heap(backend, dy);
  const v = heap(backend, y);
  for (let i = 0; i < n; i++) o[i] = v[i]! > 0 ? g[i]! : 0;
  return out;
}
