import * as tf from '@tensorflow/tfjs';
import { cachedFilter, depthwiseInfo, dilatePad, free, heap, run, type FilterCache, type KernelArgs, type TensorInfo } from './heap.js';
import { simdKernels } from '../simd.js';

/**
 * dx of depthwise conv2d. With channel multiplier 1 and no dilation (MobileNet, Xception): strided,
 * a SIMD scatter of dy·w (simd_kernels.wat); at stride 1, the backend's XNNPACK depthwise
 * convolution of the padded dy with the spatially flipped filter. Otherwise a loop over the heap
 * (cpu backend semantics).
 */
function depthwiseBackpropInput({ inputs, backend, attrs }: KernelArgs, fast: boolean): TensorInfo {
  const dy = inputs.dy!;
  const filter = inputs.filter!;
  const info = depthwiseInfo(attrs.inputShape as number[], filter.shape, attrs);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const mult = Co / C;
  const fastPath = fast && mult === 1 && dh === 1 && dw === 1;
  const simd = fastPath && (sh > 1 || sw > 1) ? simdKernels(backend) : null;
  if (simd) {
    // Strided: a scatter of dy·w, without the stride-dilated dy's zeros (3-4x faster on
    // MobileNetV2's stride-2 layers than the XNNPACK depthwise conv over the dilated dy).
    const out = backend.makeOutput([N, H, W, C], 'float32') as TensorInfo;
    heap(backend, out).fill(0);
    simd.depthwiseScatter(dy, filter, out, info);
    return out;
  }
  if (fastPath) {
    const { value: flipped, owned } = cachedFilter(backend, filter, attrs.filterCache as FilterCache | undefined, () => run('Reverse', { x: filter }, { dims: [0, 1] }, backend));
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    const bottom = H + info.padInfo.top - ((Ho - 1) * sh + 1);
    const right = W + info.padInfo.left - ((Wo - 1) * sw + 1);
    let out: TensorInfo;
    const conv = { strides: [1, 1], dataFormat: 'NHWC', dilations: [1, 1] };
    if (sh === 1 && sw === 1 && top >= 0 && left >= 0 && bottom >= 0 && right >= 0) {
      out = run('DepthwiseConv2dNative', { x: dy, filter: flipped }, { ...conv, pad: [[0, 0], [top, bottom], [left, right], [0, 0]] }, backend);
    } else {
      const padded = dilatePad(backend, dy, sh, sw, top, left, H + kh - 1, W + kw - 1);
      out = run('DepthwiseConv2dNative', { x: padded, filter: flipped }, { ...conv, pad: 'valid' }, backend);
      free(backend, padded);
    }
    if (owned) free(backend, flipped);
    return out;
  }
  const out = backend.makeOutput([N, H, W, C], 'float32') as TensorInfo;
  const dx = heap(backend, out);
  const g = heap(backend, dy);
  const f = heap(backend, filter);
  dx.fill(0);
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
              let acc = 0;
              for (let m = 0; m < mult; m++) acc += g[gBase + c * mult + m]! * f[fBase + c * mult + m]!;
              dx[xBase + c] = dx[xBase + c]! + acc;
            }
          }
        }
      }
    }
  }
  return out;
}

export const depthwiseConv2dNativeBackpropInputConfig: tf.KernelConfig = { kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName: 'wasm', kernelFunc: ((a: KernelArgs) => depthwiseBackpropInput(a, true)) as unknown as tf.KernelFunc };
/** The baseline table's: the loop only. */
export const depthwiseConv2dNativeBackpropInputBaselineConfig: tf.KernelConfig = { kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName: 'wasm', kernelFunc: ((a: KernelArgs) => depthwiseBackpropInput(a, false)) as unknown as tf.KernelFunc };
