/**
 * The input gradient of AvgPool as the adjoint of its forward: tfjs' forward averages each window
 * over the pixels inside the image ('same' padding is not counted), but its cpu and wasm
 * gradients divide every window by its full size, so at the borders of a 'same' pool they are
 * wrong (by 4/9 in the corner of a 3x3 window). Each output's gradient is spread over the
 * pixels its window read, divided by their count; registered for the wasm and cpu backends.
 */
import * as tf from '@tensorflow/tfjs';
import { heap, type KernelArgs, type TensorInfo } from './heap.js';

interface PoolAttrs { filterSize: [number, number] | number; strides: [number, number] | number; pad: 'valid' | 'same' | number; dimRoundingMode?: 'floor' | 'round' | 'ceil' }

function adjoint(dy: Float32Array, dx: Float32Array, shape: number[], attrs: PoolAttrs): void {
  const info = tf.backend_util.computePool2DInfo(shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { batchSize: n, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo;
  for (let b = 0; b < n; b++) for (let oy = 0; oy < OH; oy++) {
    const y0 = Math.max(oy * sh - top, 0);
    const y1 = Math.min(oy * sh - top + kh, H);
    for (let ox = 0; ox < OW; ox++) {
      const x0 = Math.max(ox * sw - left, 0);
      const x1 = Math.min(ox * sw - left + kw, W);
      const inv = 1 / ((y1 - y0) * (x1 - x0));
      const o = ((b * OH + oy) * OW + ox) * C;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
        const i = ((b * H + y) * W + x) * C;
        for (let c = 0; c < C; c++) dx[i + c]! += dy[o + c]! * inv;
      }
    }
  }
}

function onWasm({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const out = backend.makeOutput(input.shape, 'float32') as TensorInfo;
  const dx = heap(backend, out);
  dx.fill(0);
  adjoint(heap(backend, dy), dx, input.shape, attrs as unknown as PoolAttrs);
  return out;
}

function onCpu({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: tf.KernelBackend; attrs: unknown }): TensorInfo {
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const cpu = backend as unknown as { data: { get(id: object): { values: Float32Array } }; makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo };
  const dx = new Float32Array(tf.util.sizeFromShape(input.shape));
  adjoint(cpu.data.get(dy.dataId).values, dx, input.shape, attrs as PoolAttrs);
  return cpu.makeTensorInfo(input.shape, 'float32', dx);
}

export const avgPoolGradConfig: tf.KernelConfig = { kernelName: 'AvgPoolGrad', backendName: 'wasm', kernelFunc: onWasm as unknown as tf.KernelFunc };
export const avgPoolGradCpuConfig: tf.KernelConfig = { kernelName: 'AvgPoolGrad', backendName: 'cpu', kernelFunc: onCpu as unknown as tf.KernelFunc };
