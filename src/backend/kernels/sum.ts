import * as tf from '@tensorflow/tfjs';
import { free, heap, stock, type KernelArgs, type TensorInfo } from './heap.js';
import { simdKernels } from '../simd.js';

/**
 * Sum over the leading axes (a bias gradient: dy summed over batch and space) as one pass of
 * column sums; stock wasm transposes the whole tensor first.
 */
function sum({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape).sort((a, b) => a - b);
  const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
  if (x.dtype !== 'float32' || !leading) return stock('Sum')({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
  const kept = x.shape.slice(axes.length);
  const cols = kept.reduce((a, b) => a * b, 1);
  const rows = tf.util.sizeFromShape(x.shape) / cols;
  const outShape = attrs.keepDims ? [...axes.map(() => 1), ...kept] : kept;
  const out = backend.makeOutput(outShape, 'float32') as TensorInfo;
  const simd = cols % 4 === 0 ? simdKernels(backend) : null;
  if (simd) {
    const scratch = backend.makeOutput([2 * cols], 'float32') as TensorInfo;
    simd.colSum(x, out, scratch, rows, cols);
    free(backend, scratch);
    return out;
  }
  const o = heap(backend, out);
  const v = heap(backend, x);
  const acc = new Float64Array(cols);
  for (let r = 0, k = 0; r < rows; r++) for (let c = 0; c < cols; c++, k++) acc[c] = acc[c]! + v[k]!;
  o.set(acc);
  return out;
}

export const sumConfig: tf.KernelConfig = { kernelName: 'Sum', backendName: 'wasm', kernelFunc: sum as unknown as tf.KernelFunc };
