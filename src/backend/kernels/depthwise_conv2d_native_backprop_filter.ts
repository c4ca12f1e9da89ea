import * as tf from '@tensorflow/tfjs';
import { depthwiseInfo, heap, type KernelArgs, type TensorInfo } from './heap.js';
import { simdKernels } from '../simd.js';

/** dW of depthwise conv2d: SIMD over channels (multiplier 1), else a loop over the heap (cpu backend semantics). */
function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs, fast: boolean): TensorInfo {
  const x = inputs.x!;
  const dy = inputs.dy!;
  const info = depthwiseInfo(x.shape, attrs.filterShape as number[], attrs);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const mult = Co / C;
  const out = backend.makeOutput(attrs.filterShape as number[], 'float32') as TensorInfo;
  const simd = fast && mult === 1 && dh === 1 && dw === 1 && C % 4 === 0 ? simdKernels(backend) : null;
  if (simd) {
    heap(backend, out).fill(0);
    simd.depthwiseFilterGrad(x, dy, out, info);
    return out;
  }
  const dW = heap(backend, out);
  const g = heap(backend, dy);
  const xv = heap(backend, x);
  dW.fill(0);
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const gBase = ((b * Ho + i) * Wo + j) * Co;
        for (let p = 0; p < kh; p++) {
          const r = i * sh + p * dh - pt;
          if (r < 0 || r >= H) continue;
          for (let q = 0; q < kw; q++) {
            const s = j * sw + q * dw - pl;
            if (s < 0 || s >= W) continue;
            const xBase = ((b * H + r) * W + s) * C;
            const fBase = (p * kw + q) * Co;
            for (let c = 0; c < C; c++) {
              const xval = xv[xBase + c]!;
              for (let m = 0; m < mult; m++) {
                const k = fBase + c * mult + m;
                dW[k] = dW[k]! + xval * g[gBase + c * mult + m]!;
              }
            }
          }
        }
      }
    }
  }
  return out;
}

export const depthwiseConv2dNativeBackpropFilterConfig: tf.KernelConfig = { kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName: 'wasm', kernelFunc: ((a: KernelArgs) => depthwiseBackpropFilter(a, true)) as unknown as tf.KernelFunc };
/** The baseline table's: the loop only. */
export const depthwiseConv2dNativeBackpropFilterBaselineConfig: tf.KernelConfig = { kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName: 'wasm', kernelFunc: ((a: KernelArgs) => depthwiseBackpropFilter(a, false)) as unknown as tf.KernelFunc };
