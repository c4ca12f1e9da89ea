import * as tf from '@tensorflow/tfjs';
import { heapElements, stock, type KernelArgs, type TensorInfo } from './heap.js';

/**
 * Reverse as block copies inside the heap: the axes after the last reversed one stay whole, so
 * each of their blocks moves as one `copyWithin`. A conv filter's flip ([kh, kw, Ci, Co] over
 * kh and kw, which every input gradient needs and training rebuilds each step) is kh·kw copies;
 * stock wasm took 16 ms for a [1, 1, 320, 1280] filter and 29 ms for [3, 3, 256, 256].
 */
function reverse({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  if (x.dtype === 'string') return stock('Reverse')({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
  const shape = x.shape;
  const rank = shape.length;
  const dims = tf.util.parseAxisParam(attrs.dims as number | number[], shape);
  const flip = shape.map((d, i) => dims.includes(i) && d > 1);
  const out = backend.makeOutput(shape, x.dtype) as TensorInfo;
  const xs = backend.typedArrayFromHeap(x as tf.TensorInfo);
  const os = backend.typedArrayFromHeap(out as tf.TensorInfo);
  const last = flip.lastIndexOf(true);
  if (last < 0 || xs.length === 0) {
    os.set(xs);
    return out;
  }
  let block = 1;
  for (let d = last + 1; d < rank; d++) block *= shape[d]!;
  const { all, at: xBase } = heapElements(backend, x);
  const oBase = heapElements(backend, out).at;
  // Odometer over axes 0..last: the source walks in order, the destination mirrors flipped axes.
  const strides = new Array<number>(last + 1);
  strides[last] = block;
  for (let d = last - 1; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  const idx = new Array<number>(last + 1).fill(0);
  let dst = 0;
  for (let d = 0; d <= last; d++) if (flip[d]) dst += (shape[d]! - 1) * strides[d]!;
  const count = xs.length / block;
  for (let r = 0, src = 0; r < count; r++, src += block) {
    if (block === 1) os[dst] = xs[src]!;
    else all.copyWithin(oBase + dst, xBase + src, xBase + src + block);
    for (let d = last; d >= 0; d--) {
      const step = flip[d] ? -strides[d]! : strides[d]!;
      if (++idx[d]! < shape[d]!) {
        dst += step;
        break;
      }
      idx[d] = 0;
      dst -= step * (shape[d]! - 1);
    }
  }
  return out;
}

export const reverseConfig: tf.KernelConfig = { kernelName: 'Reverse', backendName: 'wasm', kernelFunc: reverse as unknown as tf.KernelFunc };
