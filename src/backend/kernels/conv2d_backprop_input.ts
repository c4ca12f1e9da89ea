/**
 * Conv2DBackpropInput through XNNPACK (stock tfjs-wasm runs it as a naive scalar loop): at stride 1
 * a conv of the padded dy with the flipped, in/out-transposed filter (cached per layer when the
 * caller passes a `filterCache`); strided or with few input channels, a matmul and a SIMD col2im
 * (a conv of the stride-dilated dy would multiply stride² times as many zeros: a stride-2 3×3 dx
 * on ResNet-18's shapes took 4× as long that way).
 * Equals the cpu backend's (tests/backend/wasm_kernels.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { cachedFilter, checkNHWC, dilatePad, free, heap, run, view, type FilterCache, type KernelArgs, type Pad4, type TensorInfo } from './heap.js';
import { simdKernels } from '../simd.js';

/** dx of conv2d: conv of the dilated, padded dy with the flipped, transposed filter. */
function conv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const dy = inputs.dy!;
  const filter = inputs.filter!;
  checkNHWC('Conv2DBackpropInput', attrs.dataFormat);
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number],
    attrs.strides as [number, number], 1, attrs.pad as 'same', attrs.dimRoundingMode as 'floor' | undefined);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const top = kh - 1 - pt;
  const left = kw - 1 - pl;
  const bottom = H + pt - ((Ho - 1) * sh + 1);
  const right = W + pl - ((Wo - 1) * sw + 1);

  if (info.inChannels <= COL2IM_MAX_CHANNELS || sh > 1 || sw > 1) return conv2DBackpropInputCol2Im(backend, dy, filter, info);
  const { value: wT, owned } = cachedFilter(backend, filter, attrs.filterCache as FilterCache | undefined, () => {
    const flipped = run('Reverse', { x: filter }, { dims: [0, 1] }, backend);
    const t = run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] }, backend);
    free(backend, flipped);
    return t;
  });

  // Stride 1 from here. A padding wider than the kernel (explicit padding) makes a side negative:
  // that side of dy is cropped instead of padded.
  let out: TensorInfo;
  if (top >= 0 && left >= 0 && bottom >= 0 && right >= 0) {
    const pad: Pad4 = [[0, 0], [top, bottom], [left, right], [0, 0]];
    out = run('Conv2D', { x: dy, filter: wT }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] }, backend);
  } else {
    const padded = dilatePad(backend, dy, 1, 1, top, left, H + kh - 1, W + kw - 1);
    out = run('Conv2D', { x: padded, filter: wT }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] }, backend);
    free(backend, padded);
  }
  if (owned) free(backend, wT);
  return out;
}

/**
 * With few input channels (a network's first layer, where the input gradient is the one an
 * attack needs), a conv with that few output channels is a poor fit for XNNPACK; with a stride,
 * the conv would run over the zeros between dy's dilated rows and columns. Instead:
 * cols = dy · Wᵀ as one matrix product [N·Ho·Wo, Co] x [Co, kh·kw·Ci], then col2im, a scatter-add
 * of each column back to the input position it came from.
 */
export const COL2IM_MAX_CHANNELS = 4;
function conv2DBackpropInputCol2Im(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: Ci, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const K = kh * kw * Ci;
  const cols = run('BatchMatMul', { a: view(dy, [1, N * Ho * Wo, Co]), b: view(filter, [1, K, Co]) }, { transposeA: false, transposeB: true }, backend);
  const out = backend.makeOutput([N, H, W, Ci], 'float32') as TensorInfo;
  const simd = simdKernels(backend);
  if (simd) {
    heap(backend, out).fill(0);
    simd.col2im(cols, out, info);
    free(backend, cols);
    return out;
  }
  const dx = heap(backend, out);
  const cv = heap(backend, cols);
  dx.fill(0);
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        let k = ((b * Ho + i) * Wo + j) * K;
        for (let p = 0; p < kh; p++) {
          const r = i * sh + p - pt;
          if (r < 0 || r >= H) { k += kw * Ci; continue; }
          for (let q = 0; q < kw; q++) {
            const c0 = j * sw + q - pl;
            if (c0 < 0 || c0 >= W) { k += Ci; continue; }
            const base = ((b * H + r) * W + c0) * Ci;
            for (let c = 0; c < Ci; c++, k++) dx[base + c] = dx[base + c]! + cv[k]!;
          }
        }
      }
    }
  }
  free(backend, cols);
  return out;
}

export const conv2DBackpropInputConfig: tf.KernelConfig = { kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc };
