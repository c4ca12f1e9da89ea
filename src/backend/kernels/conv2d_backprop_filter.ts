/**
 * Conv2DBackpropFilter, which stock tfjs-wasm lacks: an XNNPACK conv of the input with batch and
 * channels swapped by the upstream gradient as filter (the forward stride as a dilation); with few
 * input channels (a first layer) advkit's table takes the transposed patch matrix and one GEMM or
 * a SIMD kernel instead, and for a 1x1 stride-1 conv one transpose and one GEMM; the baseline
 * table does neither.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { checkNHWC, free, heap, run, view, type KernelArgs, type Pad4, type TensorInfo } from './heap.js';
import { simdKernels } from '../simd.js';
import { COL2IM_MAX_CHANNELS } from './conv2d_backprop_input.js';

/** dW of conv2d: conv of x^T (channels as batch) with dy^T as filter, stride as dilation. */
function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs, fast: boolean): TensorInfo {
  const x = inputs.x!;
  const dy = inputs.dy!;
  checkNHWC('Conv2DBackpropFilter', attrs.dataFormat);
  const filterShape = attrs.filterShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape,
    attrs.strides as [number, number], 1, attrs.pad as 'same', attrs.dimRoundingMode as 'floor' | undefined);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // Padding after the input so that the output is exactly kh x kw; negative means crop.
  let bottom = (kh - 1) + (Ho - 1) * sh + 1 - H - pt;
  let right = (kw - 1) + (Wo - 1) * sw + 1 - W - pl;

  // Few input channels (a first layer): the transposed patch matrix and one GEMM. With many,
  // XNNPACK's GEMM runs slowly on that shape and repacks the patch matrix every call, so the
  // batch/channel-swapped convolution below wins.
  if (fast && kh === 1 && kw === 1 && sh === 1 && sw === 1 && pt === 0 && pl === 0 && Ho === H && Wo === W) return pointwiseFilterGrad(backend, x, dy, filterShape);
  if (fast && info.inChannels <= COL2IM_MAX_CHANNELS) return conv2DBackpropFilterIm2Col(backend, x, dy, info, filterShape);
  let xT = run('Transpose', { x }, { perm: [3, 1, 2, 0] }, backend); // [Ci, H, W, N]
  if (bottom < 0 || right < 0) {
    const [ci, , , n] = xT.shape as [number, number, number, number];
    const cropped = run('Slice', { x: xT }, { begin: [0, 0, 0, 0], size: [ci, H + Math.min(bottom, 0), W + Math.min(right, 0), n] }, backend);
    free(backend, xT);
    xT = cropped;
    bottom = Math.max(bottom, 0);
    right = Math.max(right, 0);
  }
  const dyT = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }, backend); // [Ho, Wo, N, Co]
  const pad: Pad4 = [[0, 0], [pt, bottom], [pl, right], [0, 0]];
  const conv = run('Conv2D', { x: xT, filter: dyT }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [sh, sw] }, backend);
  free(backend, xT, dyT);
  const out = run('Transpose', { x: conv }, { perm: [1, 2, 0, 3] }, backend); // [kh, kw, Ci, Co]
  free(backend, conv);
  return out;
}

/**
 * A 1x1 stride-1 conv's dW is xᵀ·dy over the N·H·W positions: one transpose and one GEMM. The
 * operand with fewer channels is transposed and becomes the GEMM's left side (dW = (dyᵀ·x)ᵀ when
 * the layer narrows), which measured fastest both ways. The swapped convolution above runs the
 * whole upstream gradient as a filter and measured 1.5-7x slower on MobileNetV2's pointwise
 * layers (8x56x56: 47.7 against 6.6 ms for 24 -> 144, 27.9 against 7.0 for 144 -> 24).
 */
function pointwiseFilterGrad(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, filterShape: number[]): TensorInfo {
  const ci = x.shape[3]!;
  const co = dy.shape[3]!;
  const m = tf.util.sizeFromShape(x.shape) / ci;
  const [left, right, k, n] = ci <= co ? [x, dy, ci, co] : [dy, x, co, ci];
  const leftT = run('Transpose', { x: view(left, [m, k]) }, { perm: [1, 0] }, backend); // [k, M]
  const prod = run('BatchMatMul', { a: view(leftT, [1, k, m]), b: view(right, [1, m, n]) }, { transposeA: false, transposeB: false }, backend);
  free(backend, leftT);
  if (ci <= co) return view(prod, filterShape);
  const dW = run('Transpose', { x: view(prod, [co, ci]) }, { perm: [1, 0] }, backend);
  free(backend, prod);
  return view(dW, filterShape);
}

/**
 * dW as one matrix product: im2colᵀ [kh·kw·Ci, N·Ho·Wo] x dy [N·Ho·Wo, Co], with the patch matrix
 * built transposed on the heap (so XNNPACK runs an untransposed GEMM). Faster than the
 * batch/channel-swapped convolution, whose "filter" is the whole upstream gradient.
 */
function conv2DBackpropFilterIm2Col(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo, filterShape: number[]): TensorInfo {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: Ci, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const K = kh * kw * Ci;
  const M = N * Ho * Wo;
  const simd = Co % 16 === 0 ? simdKernels(backend) : null;
  if (simd) {
    const dW = backend.makeOutput(filterShape, 'float32') as TensorInfo;
    heap(backend, dW).fill(0);
    simd.convFilterGrad(x, dy, dW, info);
    return dW;
  }
  const colsT = backend.makeOutput([1, K, M], 'float32') as TensorInfo;
  const ct = heap(backend, colsT);
  const xv = heap(backend, x);
  for (let p = 0; p < kh; p++) {
    for (let q = 0; q < kw; q++) {
      for (let c = 0; c < Ci; c++) {
        const row = ((p * kw + q) * Ci + c) * M;
        let m = 0;
        for (let b = 0; b < N; b++) {
          for (let i = 0; i < Ho; i++) {
            const r = i * sh + p - pt;
            if (r < 0 || r >= H) {
              ct.fill(0, row + m, row + m + Wo);
              m += Wo;
              continue;
            }
            const rowBase = (b * H + r) * W;
            for (let j = 0; j < Wo; j++, m++) {
              const col = j * sw + q - pl;
              ct[row + m] = col < 0 || col >= W ? 0 : xv[(rowBase + col) * Ci + c]!;
            }
          }
        }
      }
    }
  }
  const dW = run('BatchMatMul', { a: colsT, b: view(dy, [1, M, Co]) }, { transposeA: false, transposeB: false }, backend);
  free(backend, colsT);
  return view(dW, filterShape);
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: ((a: KernelArgs) => conv2DBackpropFilter(a, true)) as unknown as tf.KernelFunc };
/** The baseline table's: the swapped convolution only. */
export const conv2DBackpropFilterBaselineConfig: tf.KernelConfig = { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: ((a: KernelArgs) => conv2DBackpropFilter(a, false)) as unknown as tf.KernelFunc };
